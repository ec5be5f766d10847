"""mmengine's ``LoggerHook`` with the test metrics file written by one process only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook
from mmseg.registry import HOOKS

if TYPE_CHECKING:
    from mmengine.runner import Runner


@HOOKS.register_module()
class MainProcessLoggerHook(LoggerHook):
    """``LoggerHook`` whose test metrics JSON is written by the main process alone.

    After a test epoch, mmengine's ``LoggerHook`` (0.5.0 to 0.10.7) dumps the metrics to
    ``{log_dir}/{timestamp}.json`` on every rank. The ranks share the timestamp, so in a
    multi-process test they all truncate and rewrite the same file, and two writes that overlap
    leave a file that is not JSON: the bytes of the shorter write followed by the tail of the
    longer one (e.g. ``{"aAcc": ..., "time": 0.028}8}``). The
    metrics themselves are the same on every rank (the evaluator collects the results before
    computing them), so this hook logs the line on every rank and writes the file on the main
    process only. Everything else is ``LoggerHook``'s, with the same arguments.
    """

    def after_test_epoch(self, runner: Runner, metrics: Optional[Dict[str, float]] = None) -> None:
        """Log the test metrics; write the JSON on the main process only."""
        if is_main_process():
            super().after_test_epoch(runner, metrics)
            return
        _, log_str = runner.log_processor.get_log_after_epoch(
            runner, len(runner.test_dataloader), "test", with_non_scalar=True
        )
        runner.logger.info(log_str)


def use_main_process_logger_hook(cfg: Config) -> bool:
    """Make the config's ``default_hooks.logger`` a :class:`MainProcessLoggerHook`.

    Only mmengine's own ``LoggerHook`` (by name or class) is replaced; its arguments are kept.
    A config without a logger hook, or with another logger hook type, is left as it is.

    Args:
        cfg (Config): The run's config, changed in place.

    Returns:
        bool: Whether the logger hook was replaced.
    """
    logger = (cfg.get("default_hooks") or {}).get("logger")
    if not isinstance(logger, dict):
        return False
    if logger.get("type") not in ("LoggerHook", "mmengine.LoggerHook", LoggerHook):
        return False
    logger["type"] = "MainProcessLoggerHook"
    return True
