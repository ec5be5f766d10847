"""Per-class IoU of several runs under the mRegProp row (the layout of the paper's Table 4).

Reads the evaluations that mmseg already writes to each work dir's logs (the per-class table of
``IoUMetric`` in ``<work_dir>/<timestamp>/<timestamp>.log``), so any mmseg work dir works. By
default (``--select best``) each row is the work dir's best evaluation, the one with the
highest mIoU: for a training run of the Table 4 configs, validated every epoch, that is the
best validation epoch, the checkpoint ``best_mIoU_iter_*.pth`` that mmengine keeps and the
model the authors' ``tools/test_net.py`` reported (``best.pth``), i.e. model selection on
Cityscapes val, the split the table reports. ``--select last`` takes the last evaluation of the
newest log instead. The mRegProp row comes from the ``ProportionMetric`` table of the same
evaluation (``dict(type='ProportionMetric', denominator='all')`` in the evaluator) or from a
dataset config with ``--regprop-config`` (denominator 'all', as the paper's row). The
computation is :mod:`mmseg_marginal.analysis.results_table`.

Table 4 on the authors' model (configs/fpn_marginal/smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_
<loss>.py, one work dir per loss, trained as docs/configs.md shows)::

    W=work_dirs/smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024
    python tools/analysis/results_table.py ${W}_ce ${W}_focal ${W}_dice ${W}_logdice ${W}_dice-ce \\
        ${W}_logdice-ce ${W}_ce-kl ${W}_ce-l1 \\
        --names CE Focal 1-Dice "-log Dice" DiceCE LogDiceCE "Ours (DKL)" "Ours (L1)" \\
        --regprop-config configs/_base_/datasets/cityscapes_marginal_512x1024.py \\
        --out-md table4_r50.md --out-png table4_r50.png
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmseg_marginal.analysis.results_table import collect_results, format_markdown, plot_table


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dirs", nargs="+", help="mmseg work dirs, one per method")
    parser.add_argument("--names", nargs="+", help="row names (default: folder names)")
    parser.add_argument("--out-md", help="write the markdown table here")
    parser.add_argument("--out-png", help="write the table as a figure here")
    parser.add_argument(
        "--regprop-config", help="dataset config for the mRegProp row (else: from the runs)"
    )
    parser.add_argument("--regprop-split", default="val", choices=["train", "val", "test"])
    parser.add_argument(
        "--select",
        default="best",
        choices=["best", "last"],
        help="evaluation of each work dir: best = highest mIoU (the best validation epoch, as "
        "Table 4 reports), last = the newest log's last evaluation (default: best)",
    )
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction, help="overrides of --regprop-config"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    results = collect_results(
        args.work_dirs,
        args.names,
        args.regprop_config,
        args.regprop_split,
        args.cfg_options,
        select=args.select,
    )
    for warning in results["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    markdown = format_markdown(results)
    print(markdown, end="")
    if args.out_md:
        Path(args.out_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out_md).write_text(markdown)
    if args.out_png:
        plot_table(results, args.out_png)
    results["markdown"] = markdown
    return results


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
