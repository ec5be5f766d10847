"""Hooks registered in mmseg's ``HOOKS``."""

from .marginal_stats_hook import MarginalStatsHook, find_stat_modules

__all__ = ["MarginalStatsHook", "find_stat_modules"]
