"""Train a segmentor with mmseg's Runner; the same flags as mmseg's ``tools/train.py``.

Imports :mod:`mmseg_marginal`, so configs work with or without ``custom_imports``. Before the
Runner is built it checks the config's loss types, its local data folders and ``load_from`` file,
and refuses to start a new run in a work dir that already holds checkpoints (``--resume``
continues that run instead). ``load_from`` may be an ``http(s)://`` URL (mmengine downloads it);
remote paths are not checked beforehand.
"""

from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

import mmseg_marginal  # noqa: F401  (registers the components, allow-lists checkpoint classes)
from mmseg_marginal.engine.checkpoint import CheckpointLoadError
from mmseg_marginal.extras import explain_import_error
from mmseg_marginal.utils.launch import setup_cpu_distributed, shutdown_distributed
from mmseg_marginal.utils.run_checks import (
    RunCheckError,
    check_checkpoint_path,
    check_data_folders,
    check_loss_types,
    check_new_run_keeps_checkpoints,
)

USER_ERRORS = (RunCheckError, CheckpointLoadError, FileNotFoundError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a segmentor (mmseg + mmseg_marginal)")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and models")
    parser.add_argument(
        "--resume",
        action="store_true",
        default=False,
        help="resume from the latest checkpoint in the work_dir automatically",
    )
    parser.add_argument(
        "--amp", action="store_true", default=False, help="enable automatic-mixed-precision"
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override settings of the config, as key=value pairs (mmengine's DictAction)",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of a failed pre-run check"
    )
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command line, as mmseg's tools/train.py does."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if cfg.optim_wrapper.type == "AmpOptimWrapper":
            print_log("AMP training is already enabled in your config.", "current", logging.WARNING)
        elif cfg.optim_wrapper.type != "OptimWrapper":
            raise RunCheckError(
                f"--amp needs optim_wrapper.type 'OptimWrapper', got {cfg.optim_wrapper.type!r}"
            )
        else:
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.loss_scale = "dynamic"
    cfg.resume = args.resume
    return cfg


def train(cfg: Config) -> None:
    """Build the Runner (``runner_type`` from the config if given) and train."""
    if "runner_type" in cfg:
        from mmseg.registry import RUNNERS

        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        cfg = build_config(args)
        check_loss_types(cfg)
        check_data_folders(cfg, ("train", "val") if cfg.get("val_cfg") else ("train",))
        check_new_run_keeps_checkpoints(cfg.work_dir, cfg.resume)
        check_checkpoint_path(cfg.get("load_from"), "load_from")
        setup_cpu_distributed(cfg, args.launcher)
        train(cfg)
    except USER_ERRORS as exc:
        shutdown_distributed(synchronize=False)
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except ImportError as exc:
        missing = explain_import_error(exc, f"the config {args.config}")
        if missing is None:
            raise
        shutdown_distributed(synchronize=False)
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(1)
    shutdown_distributed()


if __name__ == "__main__":
    main()
