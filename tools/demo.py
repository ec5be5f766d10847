"""Built-in demo: CE, -log Dice and CE + L1 label-marginal penalty on procedural street scenes.

Generates the built-in data when absent (``mmseg_marginal.datasets.generate_synthetic_streets``:
9 classes, 128x256, thing classes at Cityscapes' pixel shares, :data:`DEMO_THING_PROPORTIONS`),
trains a tiny Semantic FPN (ResNetV1c-18 at half width, from scratch) three times, with CE, with
standalone -log Dice (``ClasswiseDiceLoss``, log=True) and with CE + L1 (``CEMarginalLoss``,
lambda = 1, tau = 10), through mmengine's Runner (one run after the other, with mmengine's
progress and ETA lines), evaluates them on the validation split, prints per class the IoU and
the ground-truth versus predicted proportion, and draws the proportions of the three losses in
one PNG (needs matplotlib). A small comparison run by ``tools/compare_losses.py``'s code::

    python tools/demo.py                # about 20 minutes on an idle 2-core CPU (1225 s measured)
    python tools/demo.py --iters 50     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from compare_losses import load_results, plan_runs, run_comparison  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, "configs", "demo")
CONFIG_STEM = "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256"
DEFAULT_CONFIG = osp.join(CONFIG_DIR, f"{CONFIG_STEM}_ce.py")
#: The demo's losses: (run name, name in the table and plot, config holding its loss_decode).
DEMO_LOSSES = (
    ("ce", "CE", osp.join(CONFIG_DIR, f"{CONFIG_STEM}_ce.py")),
    ("logdice", "-log Dice", osp.join(CONFIG_DIR, f"{CONFIG_STEM}_logdice.py")),
    ("ce-l1", "CE + L1", osp.join(CONFIG_DIR, f"{CONFIG_STEM}_ce-l1.py")),
)
DISPLAY_NAMES = {name: display for name, display, _ in DEMO_LOSSES}
#: Target mean pixel share of the thing classes in the demo's data: Cityscapes' shares of car,
#: person and traffic sign (poles carrying a sign add to the pole share).
DEMO_THING_PROPORTIONS: Dict[str, float] = {
    "car": 0.07,
    "pole": 0.002,
    "person": 0.012,
    "sign": 0.005,
}
PNG_NAME = "proportions.png"


def _display_name(result: Dict[str, Any]) -> str:
    spec = result["_spec"]
    return DISPLAY_NAMES.get(spec.loss, spec.label.split(" (")[0])


def demo_table(results: Sequence[Dict[str, Any]]) -> str:
    """Per-class IoU and GT versus predicted proportion of each loss, as a text table.

    Args:
        results: result dicts of ``compare_losses`` (same dataset), in column order.

    Returns:
        str: one row per class, then mIoU and the mean proportion error.
    """
    if not results:
        raise ValueError("no result to tabulate")
    classes = results[0]["classes"]
    names = [_display_name(r) for r in results]
    head = ["class", "GT %"]
    for name in names:
        head += [f"IoU {name}", f"pred % {name}"]
    rows: List[List[str]] = []
    for c in classes:
        row = [c, f"{results[0]['per_class']['RegProp'][c]:.2f}"]
        for r in results:
            iou = r["per_class"]["IoU"][c]
            row += ["-" if iou is None else f"{iou:.1f}", f"{r['per_class']['PredProp'][c]:.2f}"]
        rows.append(row)
    summary = ["mIoU", ""]
    mae = ["mean |pred - GT| %", ""]
    for r in results:
        summary += [f"{r['mIoU']:.1f}", ""]
        mae += ["", f"{r['mPropMAE']:.2f}"]
    rows += [summary, mae]
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]

    def line(cells: List[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(w) for cell, w in zip(cells[1:], widths[1:])]
        return " | ".join([first] + rest)

    out = [line(head), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows[:-2]]
    out.append("-+-".join("-" * w for w in widths))
    out += [line(r) for r in rows[-2:]]
    return "\n".join(out)


def plot_proportions(results: Sequence[Dict[str, Any]], path: str) -> None:
    """Per-class GT and predicted proportions of each loss, as grouped bars, in one PNG.

    Top: the mean proportion (%) of each class, GT and each loss's prediction, on a log axis.
    Bottom: predicted / GT proportion per class (1 = the GT share; log axis); a class a loss
    never predicts is drawn at the bottom of the axis and marked "0".

    Args:
        results: result dicts of ``compare_losses`` (same dataset), in bar order.
        path: PNG to write.

    Raises:
        MissingExtraError: matplotlib is not installed (an ``ImportError``; the message
            names the ``analysis`` extra).
        ValueError: no result.
    """
    if not results:
        raise ValueError("no result to plot")
    import numpy as np

    from mmseg_marginal.extras import require_extra

    matplotlib = require_extra("matplotlib", "the proportions PNG of the demo")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = results[0]["classes"]
    gt = np.array([results[0]["per_class"]["RegProp"][c] for c in classes], dtype=float)
    preds = [
        np.array([r["per_class"]["PredProp"][c] for c in classes], dtype=float) for r in results
    ]
    x = np.arange(len(classes))
    width = 0.8 / (len(results) + 1)
    floor = 1e-2
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.bar(x - 0.4 + width / 2, gt, width, color="0.55", label="GT")
    for i, (r, pred) in enumerate(zip(results, preds), 1):
        colour = f"C{i - 1}"
        offset = -0.4 + width / 2 + i * width
        top.bar(x + offset, np.maximum(pred, floor), width, color=colour, label=_display_name(r))
        ratio = np.where(gt > 0, pred / np.where(gt > 0, gt, 1.0), np.nan)
        bottom.bar(x + offset, np.maximum(ratio, floor), width, color=colour)
        for j in np.flatnonzero(pred <= 0):
            bottom.text(x[j] + offset, floor * 1.15, "0", ha="center", va="bottom", fontsize=7)
    top.set_yscale("log")
    top.set_ylabel("mean proportion (%)")
    top.legend(fontsize=8, ncol=len(results) + 1)
    bottom.set_yscale("log")
    bottom.set_ylim(floor, max(2.0, float(np.nanmax([np.nanmax(p / gt) for p in preds])) * 1.3))
    bottom.axhline(1.0, color="k", lw=0.8)
    bottom.set_ylabel("predicted / GT proportion")
    bottom.set_xticks(x, classes, rotation=30, ha="right")
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3, which="both")
    first = results[0]
    fig.suptitle(
        f"{first['dataset']}, {first['num_images']} validation images: {first['iters']} "
        f"iterations, batch {first['train_batch_size']}, seed {first['seed']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_png(results: Sequence[Dict[str, Any]], path: str) -> str:
    """Draw :func:`plot_proportions` into ``path``; return the line the demo prints.

    Without matplotlib the PNG is skipped and the line says so (and why).
    """
    try:
        plot_proportions(results, path)
    except ImportError as err:
        return f"[demo] PNG skipped: {err}"
    return f"[demo] per-class GT and predicted proportions of each loss: {path}"


def _prepare_data(args: argparse.Namespace) -> Optional[str]:
    """Generate the demo's data when absent or generated with other arguments.

    Returns:
        str | None: an error message, or None when the data is ready.
    """
    from mmseg_marginal.datasets import generate_synthetic_streets

    wanted = dict(
        num_train=args.num_train,
        num_val=args.num_val,
        seed=args.seed,
        thing_proportions=DEMO_THING_PROPORTIONS,
    )
    meta_path = osp.join(args.data_root, "meta.json")
    if osp.isdir(osp.join(args.data_root, "img_dir", "train")):
        if not osp.isfile(meta_path):
            print(f"[demo] using the existing data in {args.data_root} (no meta.json)", flush=True)
            return None
        with open(meta_path) as f:
            meta = json.load(f)
        changed = [k for k, v in wanted.items() if meta.get(k) != v]
        if not changed:
            print(f"[demo] using the existing data in {args.data_root}", flush=True)
            return None
        print(
            f"[demo] the data in {args.data_root} was generated with other {', '.join(changed)}: "
            "generating it again",
            flush=True,
        )
        for sub in ("img_dir", "ann_dir"):
            shutil.rmtree(osp.join(args.data_root, sub), ignore_errors=True)
    print(
        f"[demo] generating {args.num_train}+{args.num_val} street scenes in "
        f"{args.data_root} (seed {args.seed})",
        flush=True,
    )
    try:
        generate_synthetic_streets(args.data_root, **wanted)
    except ValueError as err:
        return str(err)
    return None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="data/synthetic_streets")
    parser.add_argument("--work-dir", default="work_dirs/demo")
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help="base config (model, data, schedule) of the runs"
    )
    parser.add_argument("--iters", type=int, help="training iterations (default: the config's)")
    parser.add_argument("--num-train", type=int, default=200, help="generated training images")
    parser.add_argument("--num-val", type=int, default=50, help="generated validation images")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the training")
    parser.add_argument(
        "--batch-size", type=int, help="training batch size (default: the config's, 8)"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; returns the exit code (1 when a training failed)."""
    args = parse_args(argv)
    from mmengine.config import Config

    start = time.time()
    if args.iters is not None and args.iters < 1:
        print(f"demo: error: --iters must be >= 1, got {args.iters}", file=sys.stderr)
        return 2
    error = _prepare_data(args)
    if error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    iters = args.iters or Config.fromfile(args.config).train_cfg.max_iters
    runs = plan_runs([f"{name}={path}" for name, _, path in DEMO_LOSSES], [args.seed], iters)
    out_dir = osp.join(args.work_dir, "results")
    # Progress and ETA lines about every tenth of the training (every 20 iterations at most).
    options: Dict[str, Any] = {"default_hooks.logger.interval": max(1, min(20, iters // 10))}
    if args.batch_size:
        options["train_dataloader.batch_size"] = args.batch_size
    outcome = run_comparison(
        args.config,
        runs,
        out_dir,
        work_root=args.work_dir,
        force=True,
        data_root=args.data_root,
        cfg_options=options,
        ckpt_interval=iters,
        keep_going=False,
    )
    if outcome.failed:
        print(f"[demo] training failed: {outcome.failed}", file=sys.stderr)
        return 1
    results = load_results(out_dir, runs)
    first = results[0]
    print(
        f"\n[demo] validation split ({first['num_images']} images of {args.data_root}) after "
        f"{iters} iterations (batch {first['train_batch_size']}, seed {args.seed}); "
        "GT % and pred %: mean over images of each class's share of the pixels\n"
    )
    print(demo_table(results))
    print("\n" + write_png(results, osp.join(out_dir, PNG_NAME)))
    print(f"[demo] total wall time {time.time() - start:.0f} s; results in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
