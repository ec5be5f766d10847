"""Label-marginal losses and the paper's baselines, registered in mmseg's ``MODELS``; the
paper's decomposition of CE and log-Dice (:func:`loss_decomposition`)."""

from .ce_marginal import CEMarginalLoss
from .decomposition import loss_decomposition
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
    "loss_decomposition",
    "marginal_penalty",
    "predicted_proportions",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]
