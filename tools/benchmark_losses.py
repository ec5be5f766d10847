"""Benchmark the label-marginal losses and the baselines: forward + backward time and peak memory.

Prints a markdown table per device (one row per loss, all measured in the same run): min and
median time over ``--repeats`` forward + backward steps after ``--warmup`` untimed ones, the
ratio to mmseg's ``CrossEntropyLoss(avg_non_ignore=True)`` and the peak extra memory of one
step. What is measured and how: :mod:`mmseg_marginal.losses.benchmark`.

Example (the README's setting; a quick run: ``--height 128 --width 256 --repeats 3``)::

    python tools/benchmark_losses.py --batch 2 --classes 19 --height 512 --width 1024 \\
        --repeats 10 --device cpu
"""

import argparse
from typing import List, Optional

import torch

from mmseg_marginal.losses.benchmark import pin_malloc, run_benchmark


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--classes", type=int, default=19)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ignore-frac", type=float, default=0.05, help="fraction of ignored pixels")
    p.add_argument(
        "--device", default="auto", help="'cpu', 'cuda' or 'auto' (cpu, plus cuda if present)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--rows", nargs="*", help="only rows whose name contains one of these")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pin_malloc()  # this process' resident size follows its live tensors
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    for dev in devices:
        table = run_benchmark(
            batch=args.batch,
            classes=args.classes,
            height=args.height,
            width=args.width,
            repeats=args.repeats,
            warmup=args.warmup,
            ignore_frac=args.ignore_frac,
            device=torch.device(dev),
            rows=args.rows,
        )
        print(table)
        print()


if __name__ == "__main__":
    main()
