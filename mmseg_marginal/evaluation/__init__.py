"""Evaluation: metrics that make the label-marginal bias of a model visible."""

from . import metrics  # noqa: F401
from .metrics import ProportionMetric

__all__ = ["ProportionMetric"]
