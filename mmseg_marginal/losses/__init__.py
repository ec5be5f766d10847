"""Label-marginal losses and the paper's baselines, registered in mmseg's ``MODELS``."""

from .ce_marginal import CEMarginalLoss
from .dice import ClasswiseDiceLoss, DiceBiasLoss, GeneralizedDiceLoss, dice_statistics
from .focal import SigmoidFocalLoss, SoftmaxFocalLoss, sigmoid_focal_loss, softmax_focal_loss
from .marginal import (
    LabelMarginalLoss,
    gt_proportions,
    marginal_penalty,
    predicted_proportions,
)

__all__ = [
    "CEMarginalLoss",
    "ClasswiseDiceLoss",
    "DiceBiasLoss",
    "GeneralizedDiceLoss",
    "LabelMarginalLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
    "dice_statistics",
    "gt_proportions",
    "marginal_penalty",
    "predicted_proportions",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]
