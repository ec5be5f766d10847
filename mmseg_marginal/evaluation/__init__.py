"""Evaluation: metrics that make the label-marginal bias of a model visible, and the binary
foreground's DSC and HD-95."""

from . import metrics  # noqa: F401
from .metrics import BoundaryMetric, ClasswiseIoUMetric, ProportionMetric

__all__ = ["BoundaryMetric", "ClasswiseIoUMetric", "ProportionMetric"]
