"""Built-in demo: CE, 1 - Dice and CE + L1 label-marginal penalty on procedural vessel images.

Generates the built-in data when absent (200 + 50 images of 64x64: thin, low-contrast vessels,
about 8 % of the pixels), trains the small UNet of the DRIVE configs (one foreground logit,
sigmoid) three times for 400 iterations, with BCE, with 1 - Dice of the vessel class and with
BCE + L1 (``LabelMarginalLoss``, lambda = 1, tau = 10), through mmengine's Runner (one run after
the other, one progress bar each; the Runner's output goes to ``<work dir>/<run>/output.log``
and is printed with ``--verbose`` or when a run fails), tests them on the validation split, prints
per class the IoU and the ground-truth versus predicted proportion (and the vessel's DSC and
HD-95), and draws the proportions of the three losses in one PNG (needs matplotlib). The library
behind it is ``mmseg_marginal.experiments.demo``::

    python tools/demo.py                # the full demo: 3 losses x 400 iterations
    python tools/demo.py --iters 50     # a quick look
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
import warnings
from typing import Optional, Sequence

from mmseg_marginal.experiments.demo import (
    DEMO_CONFIG_NAME,
    PNG_NAME,
    demo_table,
    prepare_demo_data,
    run_demo,
    write_png,
)

DEFAULT_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), "configs", "demo", DEMO_CONFIG_NAME
)


# mmengine imports pkg_resources to resolve `mmseg::` config paths, once per config read; the
# deprecation notice of setuptools says nothing about the runs (see docs/installation.md)
warnings.filterwarnings("ignore", "pkg_resources is deprecated as an API", UserWarning)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default="data/synthetic_vessels")
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
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print the Runner's output of every run (default: a progress bar per run)",
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; returns the exit code (1 when a training failed, 2 bad input)."""
    args = parse_args(argv)
    start = time.time()
    if args.iters is not None and args.iters < 1:
        print(f"demo: error: --iters must be >= 1, got {args.iters}", file=sys.stderr)
        return 2
    error = prepare_demo_data(
        args.data_root, num_train=args.num_train, num_val=args.num_val, seed=args.seed
    )
    if error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    try:
        results = run_demo(
            args.config,
            data_root=args.data_root,
            work_dir=args.work_dir,
            iters=args.iters,
            seed=args.seed,
            batch_size=args.batch_size,
            quiet=not args.verbose,
        )
    except RuntimeError as err:
        print(f"[demo] {err}", file=sys.stderr)
        return 1
    first = results[0]
    out_dir = osp.join(args.work_dir, "results")
    print(
        f"\n[demo] validation split ({first['num_images']} images of {args.data_root}) after "
        f"{first['iters']} iterations (batch {first['train_batch_size']}, seed {args.seed}); "
        "GT % and pred %: mean over images of each class's share of the pixels\n"
    )
    print(demo_table(results))
    print("\n" + write_png(results, osp.join(out_dir, PNG_NAME)))
    if not args.verbose:
        print(f"[demo] each run's Runner output: {osp.join(args.work_dir, '<run>', 'output.log')}")
    print(f"[demo] total wall time {time.time() - start:.0f} s; results in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
