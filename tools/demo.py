"""Built-in demo: CE versus CE + L1 label-marginal penalty on procedural street scenes.

Generates the built-in data when absent (``mmseg_marginal.datasets.generate_synthetic_streets``:
9 classes with Cityscapes-like imbalance, 128x256), trains a tiny Semantic FPN (ResNetV1c-18 at
half width, from scratch) with CE and with CE + L1 (``CEMarginalLoss``, lambda = 1, tau = 10)
through mmengine's Runner (one run after the other, with mmengine's progress and ETA lines),
evaluates both on the validation split and prints, per class, the IoU and the ground-truth
versus predicted proportion. A small comparison run by ``tools/compare_losses.py``'s code::

    python tools/demo.py                # about 5 minutes on a 2-core CPU
    python tools/demo.py --iters 50     # a quick look
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from compare_losses import load_results, plan_runs, run_comparison  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = osp.join(
    ROOT, "configs", "demo", "fpn_r18-tiny_1xb8-800_synthetic-streets-128x256_ce.py"
)
DEMO_LOSSES = ("ce", "ce-l1")


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
    names = [r["_spec"].label.split(" (")[0] for r in results]
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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="data/synthetic_streets")
    parser.add_argument("--work-dir", default="work_dirs/demo")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="base config of both runs")
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

    from mmseg_marginal.datasets import generate_synthetic_streets

    start = time.time()
    if args.iters is not None and args.iters < 1:
        print(f"demo: error: --iters must be >= 1, got {args.iters}", file=sys.stderr)
        return 2
    if not osp.isdir(osp.join(args.data_root, "img_dir", "train")):
        print(
            f"[demo] generating {args.num_train}+{args.num_val} street scenes in "
            f"{args.data_root} (seed {args.seed})",
            flush=True,
        )
        try:
            generate_synthetic_streets(
                args.data_root, num_train=args.num_train, num_val=args.num_val, seed=args.seed
            )
        except ValueError as err:
            print(f"demo: error: {err}", file=sys.stderr)
            return 2
    else:
        print(f"[demo] using the existing data in {args.data_root}", flush=True)
    iters = args.iters or Config.fromfile(args.config).train_cfg.max_iters
    runs = plan_runs(DEMO_LOSSES, [args.seed], iters)
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
    print(f"\n[demo] total wall time {time.time() - start:.0f} s; results in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
