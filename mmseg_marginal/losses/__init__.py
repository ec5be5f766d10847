"""The losses of Liu et al. and the paper's baselines, on torch alone.

Nothing in this package imports mmseg, mmcv or mmengine: the modules are plain
``torch.nn.Module``\\ s with mmseg's call contract
(``loss(cls_score, label, weight=None, avg_factor=None, reduction_override=None,
ignore_index=255)``), usable from any PyTorch training loop. ``import mmseg_marginal`` (or
``custom_imports=['mmseg_marginal']`` in a config) registers them in mmseg's ``MODELS`` through
:mod:`mmseg_marginal.losses.mmseg_registry`.
"""

from .base import SegLoss
from .ce_marginal import CEMarginalLoss
from .decomposition import loss_decomposition
from .dice import ClasswiseDiceLoss, DiceBiasLoss, GeneralizedDiceLoss, dice_statistics
from .focal import SigmoidFocalLoss, SoftmaxFocalLoss, sigmoid_focal_loss, softmax_focal_loss
from .fused import KernelRunner, KernelStats
from .inputs import LossInputs, prepare_inputs
from .marginal import (
    LabelMarginalLoss,
    LossStats,
    MarginalStats,
    StatsReporter,
    gt_proportions,
    marginal_penalty,
    marginal_stats,
    predicted_proportions,
)

#: The loss modules registered in mmseg's ``MODELS`` (under their class names).
LOSS_MODULES = (
    CEMarginalLoss,
    ClasswiseDiceLoss,
    DiceBiasLoss,
    GeneralizedDiceLoss,
    LabelMarginalLoss,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
)

__all__ = [
    "LOSS_MODULES",
    "CEMarginalLoss",
    "ClasswiseDiceLoss",
    "DiceBiasLoss",
    "GeneralizedDiceLoss",
    "KernelRunner",
    "KernelStats",
    "LabelMarginalLoss",
    "LossInputs",
    "LossStats",
    "MarginalStats",
    "SegLoss",
    "SigmoidFocalLoss",
    "SoftmaxFocalLoss",
    "StatsReporter",
    "dice_statistics",
    "gt_proportions",
    "loss_decomposition",
    "marginal_penalty",
    "marginal_stats",
    "predicted_proportions",
    "prepare_inputs",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]
