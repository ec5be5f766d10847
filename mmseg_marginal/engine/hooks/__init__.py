"""Hooks registered in mmseg's ``HOOKS``."""

from .logger_hook import MainProcessLoggerHook, use_main_process_logger_hook
from .marginal_stats_hook import MarginalStatsHook, find_stat_modules

__all__ = [
    "MainProcessLoggerHook",
    "MarginalStatsHook",
    "find_stat_modules",
    "use_main_process_logger_hook",
]
