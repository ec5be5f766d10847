"""Label-marginal penalties as functions of the predicted foreground proportion (paper Fig. 2).

Binary case, ground-truth foreground proportion y1: the foreground Dice bias
DB1 = log(p1 + y1), the two-class Dice bias, KL(y || p) and L1 = |y1 - p1| (the last two by the
losses' own ``marginal_penalty``) against the predicted foreground proportion p1, each minimum
marked and printed. The curves are :mod:`mmseg_marginal.analysis.penalty_curves`.

Example::

    python tools/analysis/plot_penalties.py --gt-prop 0.1 --out penalties.png
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from mmseg_marginal.analysis.penalty_curves import curve_minima, penalty_curves, plot_penalties


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt-prop", type=float, default=0.1, help="foreground proportion y1")
    parser.add_argument("--out", default="penalties.png", help="output PNG")
    parser.add_argument("--num", type=int, default=1001, help="grid points on [0, 1]")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    out = plot_penalties(args.gt_prop, args.out, args.num)
    for name, p1 in curve_minima(penalty_curves(args.gt_prop, args.num)).items():
        print(f"{name:<26} minimum at p1 = {p1:.3f}")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:
        sys.exit(f"error: {error}")
