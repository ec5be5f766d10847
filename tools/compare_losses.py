"""Train a list of losses on one dataset, evaluate them, and tabulate and plot the results.

Every run (one loss, one seed, optionally one λ) trains the same base config with only
``model.decode_head.loss_decode`` replaced, in its own subprocess, one at a time, and is then
tested with mmengine's ``Runner.test()`` and the config's evaluators (plus per-class IoU and
proportions). One JSON per run; finished runs are skipped when the command is started again,
``--resume`` continues an interrupted run from its last checkpoint, and a failing run never
overwrites an earlier result. The tables (``summary.md`` or, with ``--sweep-lambda``,
``lambda_sweep.md``) and plots go next to the JSONs; ``summary.md`` gives each loss's
difference to a reference loss (``--reference``, default the first of ``--losses``) with its
95 % Welch t interval and p over seeds. Each run shows one progress bar; its output (mmengine's
Runner logs) goes to ``<work root>/<run>/output.log`` and is printed with ``--verbose`` or, its
last lines, when the run fails. The library behind it is ``mmseg_marginal.experiments``.

A loss name is the config beside ``--config`` that differs only in its loss suffix
(``..._ce.py`` -> ``..._ce-l1.py`` for ``ce-l1``), or ``name=path/to/config.py``.

A config that trains on the built-in vessel images (``SyntheticVesselsDataset``, the demo's
data) gets them written first when its data root has none: the demo's 200 + 50 images, seed 0.

CamVid, 4 losses, 3 seeds::

    python tools/compare_losses.py \\
        --config configs/camvid/fpn_r18-half_1xb8-8k_camvid-180x240_ce.py \\
        --losses ce ce-l1 ce-kl logdice-ce --seeds 0 1 2 --iters 8000 --out results/camvid --resume

λ sweep (losses without a λ run once, as references)::

    python tools/compare_losses.py --config ... --losses bce-l1 dice-bce \\
        --sweep-lambda 0.01 0.1 1 10 ...
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmseg_marginal.experiments import (
    ComparisonOutcome,
    check_data,
    plan_runs,
    reference_row,
    run_comparison,
    sibling_loss_configs,
    write_summary,
)
from mmseg_marginal.experiments.demo import prepare_demo_data

#: The demo's data (``tools/demo.py``'s defaults), written for a config that trains on it.
DEMO_DATA = dict(num_train=200, num_val=50, seed=0)

# mmengine imports pkg_resources to resolve `mmseg::` config paths, once per config read; the
# deprecation notice of setuptools says nothing about the runs (see docs/installation.md)
warnings.filterwarnings("ignore", "pkg_resources is deprecated as an API", UserWarning)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="base training config (model + data)")
    parser.add_argument(
        "--losses",
        nargs="+",
        required=True,
        help="loss names (configs beside --config), or name=config.py",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--iters", type=int, required=True, help="training iterations per run")
    parser.add_argument("--out", required=True, help="folder of the result JSONs and summary")
    parser.add_argument(
        "--work-root", default="work_dirs/compare_losses", help="parent of the runs' work dirs"
    )
    parser.add_argument(
        "--sweep-lambda", nargs="+", type=float, help="run every loss with a λ once per λ"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue interrupted runs from their checkpoint"
    )
    parser.add_argument("--force", action="store_true", help="retrain runs that have a result")
    parser.add_argument("--data-root", help="data root of every dataloader")
    parser.add_argument("--ckpt-interval", type=int, help="checkpoint every N iterations")
    parser.add_argument("--small-classes", nargs="+", help="classes of the small-classes mIoU")
    parser.add_argument(
        "--reference",
        help="loss the summary's differences are taken to (default: the first of --losses)",
    )
    parser.add_argument(
        "--summary-only", action="store_true", help="only tabulate the finished runs"
    )
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="config overrides")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print the Runner's output of every run (default: a progress bar per run)",
    )
    return parser.parse_args(argv)


def prepare_generated_data(
    config: str, cfg_options: Optional[dict] = None, data_root: Optional[str] = None
) -> Optional[str]:
    """Write the built-in vessel images when ``config`` trains on them and they are absent.

    Returns:
        str | None: an error message of the generator, or None (data present, written, or not
        generated data).

    Raises:
        FileNotFoundError: the config does not exist.
    """
    import os.path as osp

    from mmseg_marginal.experiments.run import load_config

    cfg = load_config(config, cfg_options=cfg_options, data_root=data_root)
    dataset = cfg.train_dataloader.dataset
    while "dataset" in dataset:  # RepeatDataset-style wrappers
        dataset = dataset.dataset
    if dataset.get("type") != "SyntheticVesselsDataset":
        return None
    root = dataset.get("data_root", "")
    if osp.isdir(osp.join(root, "img_dir", "train")):
        return None
    return prepare_demo_data(root, **DEMO_DATA)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code (1 when a run failed, 2 bad input)."""
    args = parse_args(argv)
    try:
        runs = plan_runs(args.losses, args.seeds, args.iters, args.sweep_lambda, config=args.config)
        reference_row([], runs, args.reference)  # an unknown reference fails before training
        if not args.summary_only:
            error = prepare_generated_data(args.config, args.cfg_options, args.data_root)
            if error:
                raise ValueError(error)
            check_data(args.config, cfg_options=args.cfg_options, data_root=args.data_root)
    except (ValueError, FileNotFoundError) as err:
        print(f"compare_losses: error: {err}", file=sys.stderr)
        return 2
    outcome = ComparisonOutcome()
    if not args.summary_only:
        losses = ", ".join(sorted(sibling_loss_configs(args.config)))
        print(f"[compare_losses] loss configs beside {args.config}: {losses}", flush=True)
        outcome = run_comparison(
            args.config,
            runs,
            args.out,
            work_root=args.work_root,
            resume=args.resume,
            force=args.force,
            cfg_options=args.cfg_options,
            data_root=args.data_root,
            ckpt_interval=args.ckpt_interval,
            small_classes=args.small_classes,
            quiet=not args.verbose,
        )
    text = write_summary(
        args.out,
        runs,
        args.small_classes,
        sweep=bool(args.sweep_lambda),
        reference=args.reference,
    )
    print(text or "No finished run yet.")
    print(
        f"[compare_losses] finished {len(outcome.finished)}, skipped {len(outcome.skipped)}, "
        f"failed {len(outcome.failed)}" + (f": {outcome.failed}" if outcome.failed else ""),
        flush=True,
    )
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
