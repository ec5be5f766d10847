"""Test (and evaluate) a segmentor with mmseg's Runner; the flags of mmseg's ``tools/test.py``.

Imports :mod:`mmseg_marginal`, so configs work with or without ``custom_imports``. The checkpoint
is a local file or an ``http(s)://`` URL (mmengine's loaders; see
``mmseg_marginal.engine.checkpoint``); a missing, corrupt, unreachable or unsafe checkpoint, a
checkpoint with another class count, or a missing local data folder ends the run with one line.
mmengine's ``LoggerHook`` becomes :class:`~mmseg_marginal.engine.hooks.MainProcessLoggerHook`, so
that a multi-process test writes its metrics JSON once.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmseg_marginal  # noqa: F401  (registers the components, allow-lists checkpoint classes)
from mmseg_marginal.engine.checkpoint import CheckpointLoadError
from mmseg_marginal.engine.hooks import use_main_process_logger_hook
from mmseg_marginal.extras import explain_import_error
from mmseg_marginal.utils.launch import setup_cpu_distributed, shutdown_distributed
from mmseg_marginal.utils.run_checks import (
    RunCheckError,
    check_checkpoint_classes,
    check_data_folders,
    load_state_dict,
)

USER_ERRORS = (RunCheckError, CheckpointLoadError, FileNotFoundError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test (and eval) a segmentor")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file or http(s):// URL")
    parser.add_argument(
        "--work-dir", help="the dir where the evaluation metrics are dumped as json"
    )
    parser.add_argument(
        "--out", type=str, help="the dir to save output predictions for offline evaluation"
    )
    parser.add_argument("--show", action="store_true", help="show prediction results")
    parser.add_argument(
        "--show-dir",
        help="dir where painted images are saved (inside work_dir/timestamp/)",
    )
    parser.add_argument("--wait-time", type=float, default=2, help="the interval of show (s)")
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
    parser.add_argument("--tta", action="store_true", help="test time augmentation")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of a failed pre-run check"
    )
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> Config:
    """Switch the config's ``SegVisualizationHook`` on for ``--show``/``--show-dir``."""
    hook = cfg.default_hooks.get("visualization")
    if hook is None:
        raise RunCheckError(
            "--show/--show-dir need default_hooks.visualization "
            "(dict(type='SegVisualizationHook')) in the config"
        )
    hook["draw"] = True
    if args.show:
        hook["show"] = True
        hook["wait_time"] = args.wait_time
    if args.show_dir:
        cfg.visualizer["save_dir"] = args.show_dir
    return cfg


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command line, as mmseg's tools/test.py does."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir", None) is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint  # a local file or an http(s):// URL, as in mmseg
    # one process writes the metrics JSON (mmengine's LoggerHook writes it from every rank)
    use_main_process_logger_hook(cfg)
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator["output_dir"] = args.out
        cfg.test_evaluator["keep_results"] = True
    return cfg


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        cfg = build_config(args)
        check_checkpoint_classes(load_state_dict(args.checkpoint), cfg.model, args.checkpoint)
        check_data_folders(cfg, ("test",))
        setup_cpu_distributed(cfg, args.launcher)
        Runner.from_cfg(cfg).test()
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
