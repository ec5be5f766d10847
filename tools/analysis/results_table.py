"""Per-class IoU of several runs under the mRegProp row (the layout of the paper's Table 4).

Reads the evaluation that mmseg already writes to each work dir's log (the per-class table of
``IoUMetric`` in the latest ``<work_dir>/<timestamp>/<timestamp>.log``, its last evaluation),
so any mmseg work dir works. The mRegProp row comes from the ``ProportionMetric`` table of the
same evaluation (``dict(type='ProportionMetric', denominator='all')`` in the evaluator) or from
a dataset config with ``--regprop-config`` (denominator 'all', as the paper's row). The
computation is :mod:`mmseg_marginal.analysis.results_table`.

Example::

    python tools/analysis/results_table.py work_dirs/ce work_dirs/dice work_dirs/ours_l1 \\
        --names CE Dice "Ours(L1)" --out-md table.md --out-png table.png
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
        "--cfg-options", nargs="+", action=DictAction, help="overrides of --regprop-config"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    results = collect_results(
        args.work_dirs, args.names, args.regprop_config, args.regprop_split, args.cfg_options
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
