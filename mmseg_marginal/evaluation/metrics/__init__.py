"""Evaluation metrics registered in mmseg's ``METRICS``."""

from .boundary_metric import (
    BoundaryMetric,
    binary_image_scores,
    dice_score,
    directed_surface_distances,
    hausdorff_distance,
)
from .classwise_iou_metric import ClasswiseIoUMetric
from .proportion_metric import ProportionMetric, image_proportion_counts

__all__ = [
    "BoundaryMetric",
    "ClasswiseIoUMetric",
    "ProportionMetric",
    "binary_image_scores",
    "dice_score",
    "directed_surface_distances",
    "hausdorff_distance",
    "image_proportion_counts",
]
