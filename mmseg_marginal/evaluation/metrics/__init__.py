"""Evaluation metrics registered in mmseg's ``METRICS``."""

from .proportion_metric import ProportionMetric, image_proportion_counts

__all__ = ["ProportionMetric", "image_proportion_counts"]
