"""The built-in demo: its losses, its data, its table and its plot.

``tools/demo.py`` (``make demo``) generates procedural vessel images
(:func:`~mmseg_marginal.datasets.generate_synthetic_vessels`: thin, low-contrast foreground,
DRIVE's setting in miniature), trains the configs of ``configs/demo`` (BCE, 1 - Dice of the
vessel, BCE + L1) one after the other with :func:`run_comparison`, and prints
:func:`demo_table` and the path of :func:`write_png`'s plot.
"""

from __future__ import annotations

import json
import os.path as osp
import shutil
from typing import Any, Dict, List, Optional, Sequence

from mmseg_marginal.datasets.synthetic_vessels import GENERATOR, generate_synthetic_vessels

from .comparison import run_comparison
from .plan import plan_runs
from .results import load_results

#: The demo's base config, in the repository's ``configs/demo`` folder.
DEMO_CONFIG_NAME = "unet-s4-c16_1xb8-400_synthetic-vessels-64x64_bce.py"
#: The demo's losses: (loss name, i.e. config suffix in ``configs/demo``, name in the table).
DEMO_LOSSES = (("bce", "CE"), ("dice", "1 - Dice"), ("bce-l1", "CE + L1"))
DISPLAY_NAMES = dict(DEMO_LOSSES)
PNG_NAME = "proportions.png"


def display_name(result: Dict[str, Any]) -> str:
    spec = result["_spec"]
    return DISPLAY_NAMES.get(spec.loss, spec.label.split(" (")[0])


def demo_table(results: Sequence[Dict[str, Any]]) -> str:
    """Per-class IoU and GT versus predicted proportion of each loss, as a text table.

    Args:
        results: result dicts of ``compare_losses`` (same dataset), in column order.

    Returns:
        str: one row per class, then mIoU and the mean proportion error (per image, averaged
        over the classes); for binary results (``result['binary']``) also the foreground's
        per-image DSC and HD-95.
    """
    if not results:
        raise ValueError("no result to tabulate")
    classes = results[0]["classes"]
    names = [display_name(r) for r in results]
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
    if all("binary" in r for r in results):
        # Binary runs: the foreground's per-image DSC and HD-95 (BoundaryMetric), mean over images.
        for label, key in (("DSC (per image)", "DSC"), ("HD-95 px (per image)", "HD95")):
            row = [label, ""]
            for r in results:
                value = r["binary"][key]
                row += ["-" if value is None else f"{value:.1f}", ""]
            rows.append(row)
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]

    def line(cells: List[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(w) for cell, w in zip(cells[1:], widths[1:])]
        return " | ".join([first] + rest)

    out = [line(head), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows[: len(classes)]]
    out.append("-+-".join("-" * w for w in widths))
    out += [line(r) for r in rows[len(classes) :]]
    return "\n".join(out)


def plot_proportions(results: Sequence[Dict[str, Any]], path: str) -> None:
    """Per-class GT and predicted proportions of each loss, as grouped bars, in one PNG.

    Top: the mean proportion (%) of each class, GT and each loss's prediction, on a log axis.
    Bottom: predicted / GT proportion per class (1 = the GT share; log axis); a class a loss
    never predicts is drawn at the bottom of the axis and marked "0". When every class is
    predicted within a factor 4 of its GT share, this axis is linear instead, and with at most
    four classes each bar carries its ratio.

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
    ratios = [np.where(gt > 0, pred / np.where(gt > 0, gt, 1.0), np.nan) for pred in preds]
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios])
    # Every class predicted within a factor 4 of its GT share: a linear ratio axis around 1 shows
    # the differences; otherwise a log axis from 0.01 (a class never predicted drawn there).
    linear = finite.size > 0 and finite.min() > 0.25 and finite.max() < 4.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.bar(x - 0.4 + width / 2, gt, width, color="0.55", label="GT")
    for i, (r, pred, ratio) in enumerate(zip(results, preds, ratios), 1):
        colour = f"C{i - 1}"
        offset = -0.4 + width / 2 + i * width
        top.bar(x + offset, np.maximum(pred, floor), width, color=colour, label=display_name(r))
        heights = ratio if linear else np.maximum(ratio, floor)
        bars = bottom.bar(x + offset, heights, width, color=colour)
        if len(classes) <= 4:  # few bars: print each ratio on its bar
            bottom.bar_label(bars, labels=[f"{v:.2f}" for v in ratio], fontsize=8)
        for j in np.flatnonzero(pred <= 0):
            bottom.text(x[j] + offset, floor * 1.15, "0", ha="center", va="bottom", fontsize=7)
    top.set_yscale("log")
    top.set_ylabel("mean proportion (%)")
    top.legend(fontsize=8, ncol=len(results) + 1)
    if linear:
        bottom.set_ylim(min(0.8, finite.min() - 0.1), max(1.2, finite.max() + 0.15))
    else:
        bottom.set_yscale("log")
        bottom.set_ylim(floor, max(2.0, float(finite.max()) * 1.3))
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


def prepare_demo_data(data_root: str, *, num_train: int, num_val: int, seed: int) -> Optional[str]:
    """Generate the demo's data when absent or generated with other arguments.

    Returns:
        str | None: an error message, or None when the data is ready.
    """
    wanted = dict(num_train=num_train, num_val=num_val, seed=seed)
    meta_path = osp.join(data_root, "meta.json")
    if osp.isdir(osp.join(data_root, "img_dir", "train")):
        if not osp.isfile(meta_path):
            print(f"[demo] using the existing data in {data_root} (no meta.json)", flush=True)
            return None
        with open(meta_path) as f:
            meta = json.load(f)
        changed = [k for k, v in wanted.items() if meta.get(k) != v]
        if meta.get("generator") != GENERATOR:
            changed.insert(0, "generator")
        if not changed:
            print(f"[demo] using the existing data in {data_root}", flush=True)
            return None
        print(
            f"[demo] the data in {data_root} was generated with other {', '.join(changed)}: "
            "generating it again",
            flush=True,
        )
        for sub in ("img_dir", "ann_dir"):
            shutil.rmtree(osp.join(data_root, sub), ignore_errors=True)
    print(
        f"[demo] generating {num_train}+{num_val} vessel images in {data_root} (seed {seed})",
        flush=True,
    )
    try:
        generate_synthetic_vessels(data_root, **wanted)
    except ValueError as err:
        return str(err)
    return None


def run_demo(
    config: str,
    *,
    data_root: str,
    work_dir: str,
    iters: Optional[int] = None,
    seed: int = 0,
    batch_size: Optional[int] = None,
    quiet: bool = False,
) -> List[Dict[str, Any]]:
    """Train and test the demo's losses (:data:`DEMO_LOSSES`, the siblings of ``config``).

    Each loss trains ``config`` with its loss for ``iters`` iterations (default: the
    config's) through :func:`run_comparison` (results in ``<work_dir>/results``, retrained on
    every call) and is tested on the validation split. ``quiet``: one progress bar per run,
    the runs' output in their work dirs (see :func:`run_comparison`).

    Returns:
        list[dict]: the result dicts, in the order of :data:`DEMO_LOSSES`.

    Raises:
        ValueError: ``iters < 1``.
        RuntimeError: a training failed (its name and work dir in the message).
    """
    from mmengine.config import Config

    if iters is not None and iters < 1:
        raise ValueError(f"--iters must be >= 1, got {iters}")
    iters = iters or Config.fromfile(config).train_cfg.max_iters
    runs = plan_runs([name for name, _ in DEMO_LOSSES], [seed], iters, config=config)
    out_dir = osp.join(work_dir, "results")
    # Progress and ETA lines about every tenth of the training (every 20 iterations at most).
    options: Dict[str, Any] = {"default_hooks.logger.interval": max(1, min(20, iters // 10))}
    if batch_size:
        options["train_dataloader.batch_size"] = batch_size
    outcome = run_comparison(
        config,
        runs,
        out_dir,
        work_root=work_dir,
        force=True,
        data_root=data_root,
        cfg_options=options,
        ckpt_interval=iters,
        keep_going=False,
        quiet=quiet,
    )
    if outcome.failed:
        raise RuntimeError(f"training failed: {outcome.failed} (see {work_dir})")
    return load_results(out_dir, runs)
