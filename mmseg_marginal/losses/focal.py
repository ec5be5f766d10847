"""Focal loss baselines (Lin et al. 2017), multi-class, ignore-aware: softmax and sigmoid.

Softmax focal (the default):

.. math::

    FL = \\frac{1}{N} \\sum_{i \\in V} w_i\\, (1 - p_{i y_i})^{\\gamma} (-\\log p_{i y_i})

with ``p = softmax(z)``, ``V`` the valid pixels (label != ignore_index), ``N = |V|`` (plus
mmseg's float32 eps, so a batch without valid pixels gives 0) and ``w`` an optional per-pixel
weight, reduced like mmseg's ``CrossEntropyLoss(avg_non_ignore=True)``; ``gamma = 0`` is exactly
that cross-entropy. Used as a baseline in Liu et al., "The hidden label-marginal biases of
segmentation losses" (gamma = 2).

Sigmoid one-vs-rest focal (``use_sigmoid=True``, or the registered alias
``SigmoidFocalLoss``), the focal loss the authors' released code trained with
(segmentation-models-pytorch 0.2.1's multi-class ``FocalLoss``): every class ``k`` is a binary
problem with target ``t_ik = [y_i = k]`` and probability ``s_ik = sigmoid(z_ik)``;
``q_ik = s_ik`` if ``t_ik = 1`` else ``1 - s_ik``,

.. math::

    FL_\\sigma = \\sum_{k=1}^{K} \\frac{1}{N} \\sum_{i \\in V} w_i\\, a_{ik}
    (1 - q_{ik})^{\\gamma} (-\\log q_{ik}), \\qquad
    a_{ik} = \\alpha t_{ik} + (1 - \\alpha)(1 - t_{ik})\\ (1\\ \\text{without}\\ \\alpha),

summed over classes and averaged over the valid pixels of the batch (``N = |V|`` exactly; a
batch without valid pixels gives 0). With one logit channel it
is the binary sigmoid focal loss on labels {0, 1} (``t_i = y_i``).
"""

from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .labels import check_labels
from .utils import SegLoss, check_binary, flatten_inputs, log_softmax_dim1, valid_pixel_weight


def _focal_term(one_minus_q: Tensor, gamma: float) -> Tensor:
    # the clamp keeps the gradient of the power finite for gamma < 1 when q = 1 exactly
    return one_minus_q.clamp_min(torch.finfo(one_minus_q.dtype).tiny) ** gamma


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
    check_binary(z, use_sigmoid=False, name=name)
    valid = check_labels(lab, z.shape[1], ignore_index)
    lab_c = torch.where(valid, lab, 0)
    logp_y = torch.gather(log_softmax_dim1(z), 1, lab_c.unsqueeze(1)).squeeze(1)
    # 1 - p = -expm1(log p), accurate near p = 1
    per_pixel = -_focal_term(-torch.expm1(logp_y), gamma) * logp_y
    w = valid_pixel_weight(valid, weight, lab, dtype=z.dtype, name=name)
    denom = valid.sum().to(z.dtype) + torch.finfo(torch.float32).eps
    return (per_pixel * w).sum() / denom


def sigmoid_focal_loss(
    cls_score: Tensor,
    label: Tensor,
    gamma: float = 2.0,
    alpha: Optional[float] = None,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = 255,
) -> Tensor:
    """Functional sigmoid one-vs-rest focal loss (``FL_sigma`` of the module docstring).

    Args:
        cls_score (Tensor): Logits ``(B, K, *spatial)``; ``K = 1`` is the binary case
            (labels in {0, 1}), ``K >= 2`` one-vs-rest over the K classes.
        label (Tensor): Labels ``(B, *spatial)``.
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        alpha (float | None): Weight of the positive term in [0, 1] (``1 - alpha`` for the
            negative one); None: no weighting. Default: None.
        weight (Tensor | None): Optional per-pixel weight, shape of ``label``.
        ignore_index (int | None): Label to ignore. Default: 255.

    Returns:
        Tensor: Scalar loss (float32 for half-precision inputs).
    """
    name = "SigmoidFocalLoss"
    z, lab = flatten_inputs(cls_score, label, name)
    k = z.shape[1]
    valid = check_labels(lab, 2 if k == 1 else k, ignore_index)
    lab_c = torch.where(valid, lab, 0)
    if k == 1:
        target = lab_c.unsqueeze(1).to(z.dtype)
    else:
        classes = torch.arange(k, device=z.device).view(1, k, 1)
        target = (lab_c.unsqueeze(1) == classes).to(z.dtype)
    # -log q = softplus(z) - t z, computed stably by torch
    nll = F.binary_cross_entropy_with_logits(z, target, reduction="none")
    per_elem = _focal_term(-torch.expm1(-nll), gamma) * nll
    if alpha is not None:
        per_elem = per_elem * (alpha * target + (1 - alpha) * (1 - target))
    w = valid_pixel_weight(valid, weight, lab, dtype=z.dtype, name=name)
    # exact mean over the valid pixels; a batch without any gives 0
    denom = valid.sum().clamp_min(1).to(z.dtype)
    return (per_elem.sum(1) * w).sum() / denom


@MODELS.register_module()
class SoftmaxFocalLoss(SegLoss):
    """Focal loss module (mmseg loss conventions), softmax or sigmoid one-vs-rest.

    Args:
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_focal'``.
        use_sigmoid (bool): The sigmoid one-vs-rest focal (``FL_sigma`` of the module
            docstring; one channel: binary). ``SigmoidFocalLoss`` is the same with this set.
            Default: False.
        alpha (float | None): Positive-term weight in [0, 1] of the sigmoid focal (the softmax
            form has none). Default: None.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        loss_weight: float = 1.0,
        loss_name: str = "loss_focal",
        use_sigmoid: bool = False,
        alpha: Optional[float] = None,
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name)
        name = type(self).__name__
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if alpha is not None:
            if not use_sigmoid:
                raise ValueError(
                    f"{name}: alpha={alpha} is an option of the sigmoid focal loss "
                    "(use_sigmoid=True / SigmoidFocalLoss)"
                )
            if not 0 <= alpha <= 1:
                raise ValueError(f"{name}: alpha must be in [0, 1], got {alpha}")
            alpha = float(alpha)
        self.gamma = float(gamma)
        self.use_sigmoid = use_sigmoid
        self.alpha = alpha

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, use_sigmoid={self.use_sigmoid}, alpha={self.alpha}"

    def compute_loss(
        self, logits: Tensor, label: Tensor, weight: Optional[Tensor], ignore_index: Optional[int]
    ) -> Tensor:
        """``FL`` before ``loss_weight`` (arguments as :func:`softmax_focal_loss`)."""
        if self.use_sigmoid:
            return sigmoid_focal_loss(
                logits,
                label,
                gamma=self.gamma,
                alpha=self.alpha,
                weight=weight,
                ignore_index=ignore_index,
            )
        return softmax_focal_loss(
            logits, label, gamma=self.gamma, weight=weight, ignore_index=ignore_index
        )


@MODELS.register_module()
class SigmoidFocalLoss(SoftmaxFocalLoss):
    """``SoftmaxFocalLoss(use_sigmoid=True)`` under a name that says what it computes: the
    sigmoid one-vs-rest focal loss of the authors' released code (smp 0.2.1 ``FocalLoss``,
    multi-class mode: summed over classes, averaged over valid pixels); one logit channel is
    the binary sigmoid focal loss.

    Args:
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        alpha (float | None): Positive-term weight in [0, 1]. Default: None.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_focal'``.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Optional[float] = None,
        loss_weight: float = 1.0,
        loss_name: str = "loss_focal",
    ) -> None:
        super().__init__(
            gamma=gamma,
            loss_weight=loss_weight,
            loss_name=loss_name,
            use_sigmoid=True,
            alpha=alpha,
        )
