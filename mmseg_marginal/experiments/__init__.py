"""Loss comparisons: plan runs, train and test each through mmengine's Runner, tabulate.

- :mod:`.plan`: :func:`plan_runs` (losses read from the configs, seeds, λ sweep),
  :class:`RunSpec`.
- :mod:`.run`: one run (:func:`build_run_config`, :func:`train_and_evaluate`: ``Runner.train()``
  then ``Runner.test()`` with the config's evaluators).
- :mod:`.comparison`: :func:`run_comparison` (one subprocess per run, resumable) and
  :func:`check_data`.
- :mod:`.results`: result JSONs to tables (``summary.md``, ``lambda_sweep.md``) and plots.
- :mod:`.stats`: differences between losses over seeds (Welch's t interval and p).
- :mod:`.demo`: the built-in demo's data, table and plot.

``tools/compare_losses.py`` and ``tools/demo.py`` are their command lines.
"""

from .comparison import ComparisonOutcome, check_data, run_comparison
from .plan import (
    RunSpec,
    describe_loss,
    loss_of_config,
    plan_runs,
    sibling_loss_configs,
    term_weight,
    with_term_weight,
)
from .results import (
    aggregate,
    aggregate_binary,
    binary_summary_markdown,
    load_results,
    reference_row,
    small_class_names,
    summary_markdown,
    sweep_markdown,
    write_summary,
)
from .run import (
    build_run_config,
    code_version,
    comparison_evaluators,
    hardware,
    metrics_to_result,
)
from .stats import Difference, t_interval, welch_difference

__all__ = [
    "ComparisonOutcome",
    "Difference",
    "RunSpec",
    "aggregate",
    "aggregate_binary",
    "binary_summary_markdown",
    "build_run_config",
    "check_data",
    "code_version",
    "describe_loss",
    "hardware",
    "load_results",
    "loss_of_config",
    "metrics_to_result",
    "plan_runs",
    "reference_row",
    "run_comparison",
    "sibling_loss_configs",
    "small_class_names",
    "summary_markdown",
    "sweep_markdown",
    "t_interval",
    "term_weight",
    "comparison_evaluators",
    "welch_difference",
    "with_term_weight",
    "write_summary",
]
