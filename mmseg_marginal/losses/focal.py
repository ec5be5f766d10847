"""Softmax focal loss baseline (Lin et al. 2017), multi-class, ignore-aware.

.. math::

    FL = \\frac{1}{N} \\sum_{i \\in V} w_i\\, (1 - p_{i y_i})^{\\gamma} (-\\log p_{i y_i})

with ``p = softmax(z)``, ``V`` the valid pixels (label != ignore_index), ``N = |V|`` (plus
mmseg's float32 eps, so a batch without valid pixels gives 0) and ``w`` an optional per-pixel
weight, reduced like mmseg's ``CrossEntropyLoss(avg_non_ignore=True)``; ``gamma = 0`` is exactly
that cross-entropy. Used as a baseline in Liu et al., "The hidden label-marginal biases of
segmentation losses" (gamma = 2).
"""

from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .marginal import check_binary
from .utils import check_labels, flatten_inputs, log_softmax_dim1, pixel_weight


def softmax_focal_loss(
    cls_score: Tensor,
    label: Tensor,
    gamma: float = 2.0,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = 255,
) -> Tensor:
    """Functional softmax focal loss (see the module docstring).

    Args:
        cls_score (Tensor): Logits ``(B, K, *spatial)``, K >= 2.
        label (Tensor): Labels ``(B, *spatial)``.
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        weight (Tensor | None): Optional per-pixel weight, shape of ``label``.
        ignore_index (int | None): Label to ignore. Default: 255.

    Returns:
        Tensor: Scalar loss (float32 for half-precision inputs).
    """
    name = "SoftmaxFocalLoss"
    z, lab = flatten_inputs(cls_score, label, name)
    check_binary(z, False, name)
    valid = check_labels(lab, z.shape[1], ignore_index)
    lab_c = torch.where(valid, lab, 0)
    logp_y = torch.gather(log_softmax_dim1(z), 1, lab_c.unsqueeze(1)).squeeze(1)
    # 1 - p = -expm1(log p), accurate near p = 1; the clamp keeps the gradient of the power
    # finite for gamma < 1 when p = 1 exactly.
    one_minus_p = (-torch.expm1(logp_y)).clamp_min(torch.finfo(z.dtype).tiny)
    per_pixel = -(one_minus_p**gamma) * logp_y
    w = valid.to(z.dtype)
    pw = pixel_weight(weight, lab, name)
    if pw is not None:
        w = w * pw.to(z.dtype)
    denom = valid.sum().to(z.dtype) + torch.finfo(torch.float32).eps
    return (per_pixel * w).sum() / denom


@MODELS.register_module()
class SoftmaxFocalLoss(nn.Module):
    """Softmax focal loss module (mmseg loss conventions).

    Args:
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_focal'``.
    """

    def __init__(
        self, gamma: float = 2.0, loss_weight: float = 1.0, loss_name: str = "loss_focal"
    ) -> None:
        super().__init__()
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(
        self,
        cls_score: Tensor,
        label: Tensor,
        weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = 255,
        **kwargs,
    ) -> Tensor:
        """Compute ``loss_weight * FL`` (arguments as :func:`softmax_focal_loss`)."""
        return self.loss_weight * softmax_focal_loss(
            cls_score, label, self.gamma, weight, ignore_index
        )

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name
