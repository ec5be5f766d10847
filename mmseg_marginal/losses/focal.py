"""Focal loss baselines (Lin et al. 2017), multi-class, ignore-aware: softmax and sigmoid.

Softmax focal (the default):

.. math::

    FL = \\frac{1}{N} \\sum_{i \\in V} w_i\\, (1 - p_{i y_i})^{\\gamma} (-\\log p_{i y_i})

with ``p = softmax(z)``, ``V`` the valid pixels (label != ignore_index), ``N = |V|`` (plus
mmseg's float32 eps, so a batch without valid pixels gives 0) and ``w`` an optional per-pixel
weight, reduced like mmseg's ``CrossEntropyLoss(avg_non_ignore=True)``; ``gamma = 0`` is exactly
that cross-entropy. Used as a baseline in Liu et al., "The hidden label-marginal biases of
segmentation losses" (gamma = 2).

Sigmoid one-vs-rest focal (``SigmoidFocalLoss``), the focal loss the authors' released code
trained with (segmentation-models-pytorch 0.2.1's multi-class ``FocalLoss``): every class
``k`` is a binary problem with target ``t_ik = [y_i = k]`` and probability ``s_ik = sigmoid(z_ik)``;
``q_ik = s_ik`` if ``t_ik = 1`` else ``1 - s_ik``,

.. math::

    FL_\\sigma = \\sum_{k=1}^{K} \\frac{1}{N} \\sum_{i \\in V} w_i\\, a_{ik}
    (1 - q_{ik})^{\\gamma} (-\\log q_{ik}), \\qquad
    a_{ik} = \\alpha t_{ik} + (1 - \\alpha)(1 - t_{ik})\\ (1\\ \\text{without}\\ \\alpha),

summed over classes and averaged over the valid pixels of the batch (``N = |V|`` exactly; a
batch without valid pixels gives 0). With one logit channel it
is the binary sigmoid focal loss on labels {0, 1} (``t_i = y_i``).
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import SegLoss
from .inputs import CE_EPS, LossInputs, deprecated, log_softmax_dim1, prepare_inputs
from .labels import check_labels


def _focal_term(one_minus_q: Tensor, gamma: float) -> Tensor:
    # the clamp keeps the gradient of the power finite for gamma < 1 when q = 1 exactly
    return one_minus_q.clamp_min(torch.finfo(one_minus_q.dtype).tiny) ** gamma


def _weighted(per_pixel: Tensor, valid: Tensor, weight: Optional[Tensor]) -> Tensor:
    """Per-pixel values times validity and the optional per-pixel weight, 0 at ignored pixels."""
    w = valid.to(per_pixel.dtype)
    if weight is not None:
        w = w * weight
    return per_pixel * w


def softmax_focal_pixels(inp: LossInputs, gamma: float) -> Tuple[Tensor, Tensor]:
    """Per-pixel softmax focal terms ``w_i (1 - p_iy)^gamma (-log p_iy)`` ``(B, P)`` (0 at
    ignored pixels) and the validity mask ``(B, P)``."""
    z = inp.z
    valid = check_labels(inp.label, z.shape[1], inp.ignore_index)
    lab_c = torch.where(valid, inp.label, 0)
    logp_y = torch.gather(log_softmax_dim1(z), 1, lab_c.unsqueeze(1)).squeeze(1)
    # 1 - p = -expm1(log p), accurate near p = 1
    per_pixel = -_focal_term(-torch.expm1(logp_y), gamma) * logp_y
    return _weighted(per_pixel, valid, inp.weight), valid


def sigmoid_focal_pixels(
    inp: LossInputs, gamma: float, alpha: Optional[float]
) -> Tuple[Tensor, Tensor]:
    """Per-pixel sigmoid one-vs-rest focal terms summed over classes ``(B, P)`` (0 at ignored
    pixels) and the validity mask ``(B, P)``."""
    z = inp.z
    k = z.shape[1]
    valid = check_labels(inp.label, 2 if k == 1 else k, inp.ignore_index)
    lab_c = torch.where(valid, inp.label, 0)
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
    return _weighted(per_elem.sum(1), valid, inp.weight), valid


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
    inp = prepare_inputs(
        cls_score, label, weight, ignore_index, use_sigmoid=False, name="SoftmaxFocalLoss"
    )
    per_pixel, valid = softmax_focal_pixels(inp, gamma)
    return per_pixel.sum() / (valid.sum().to(per_pixel.dtype) + CE_EPS)


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
    inp = prepare_inputs(
        cls_score, label, weight, ignore_index, use_sigmoid=None, name="SigmoidFocalLoss"
    )
    per_pixel, valid = sigmoid_focal_pixels(inp, gamma, alpha)
    # exact mean over the valid pixels; a batch without any gives 0
    return per_pixel.sum() / valid.sum().clamp_min(1).to(per_pixel.dtype)


def _check_gamma(name: str, gamma: float) -> float:
    if not gamma >= 0:
        raise ValueError(f"{name}: gamma must be >= 0, got {gamma}")
    return float(gamma)


class SoftmaxFocalLoss(SegLoss):
    """Softmax focal loss (``FL`` of the module docstring), mmseg loss conventions.

    Args:
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_focal'``.
        use_sigmoid (bool): Deprecated: ``True`` builds a :class:`SigmoidFocalLoss` (the other
            formula) with a ``DeprecationWarning``. Default: False.
        alpha (None): Only with the deprecated ``use_sigmoid=True``.
        reduction (str): Must be ``'mean'``.

    Per-call options: ``avg_factor`` replaces the valid-pixel count;
    ``reduction_override='none'`` returns the per-pixel terms ``(B, *spatial)`` times
    ``loss_weight``.
    """

    per_pixel = True

    def __new__(cls, *args: object, use_sigmoid: bool = False, **kwargs: object) -> "SegLoss":
        if cls is SoftmaxFocalLoss and use_sigmoid:
            deprecated(cls.__name__, "use_sigmoid=True", "type='SigmoidFocalLoss'")
            return SigmoidFocalLoss(*args, **kwargs)  # type: ignore[arg-type]
        return super().__new__(cls)

    def __init__(
        self,
        gamma: float = 2.0,
        loss_weight: float = 1.0,
        loss_name: str = "loss_focal",
        use_sigmoid: bool = False,
        alpha: Optional[float] = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name, reduction=reduction)
        name = type(self).__name__
        if use_sigmoid:  # only reached positionally: the keyword builds a SigmoidFocalLoss
            raise ValueError(
                f"{name}: use_sigmoid=True is the sigmoid focal loss; use SigmoidFocalLoss"
            )
        if alpha is not None:
            raise ValueError(
                f"{name}: alpha={alpha} is an option of the sigmoid focal loss (SigmoidFocalLoss)"
            )
        self.gamma = _check_gamma(name, gamma)
        self.use_sigmoid = False
        self.alpha = None

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``FL`` before ``loss_weight``."""
        per_pixel, valid = softmax_focal_pixels(inp, self.gamma)
        denom = valid.sum().to(per_pixel.dtype) if avg_factor is None else avg_factor
        return per_pixel.sum() / (denom + CE_EPS)

    def pixel_values(self, inp: LossInputs) -> Tensor:
        """Per-pixel focal terms ``(B, P)``."""
        return softmax_focal_pixels(inp, self.gamma)[0]


class SigmoidFocalLoss(SegLoss):
    """Sigmoid one-vs-rest focal loss (``FL_sigma`` of the module docstring): the focal loss
    of the authors' released code (smp 0.2.1 ``FocalLoss``, multi-class mode: summed over
    classes, averaged over valid pixels); one logit channel is the binary sigmoid focal loss.

    Args:
        gamma (float): Focusing parameter >= 0. Default: 2.0.
        alpha (float | None): Positive-term weight in [0, 1]. Default: None.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_focal'``.
        use_sigmoid (bool): Must be True (accepted for mmseg's loss-dict keys).
        reduction (str): Must be ``'mean'``.

    Per-call options: ``avg_factor`` replaces the valid-pixel count;
    ``reduction_override='none'`` returns the per-pixel terms (summed over classes)
    ``(B, *spatial)`` times ``loss_weight``.
    """

    per_pixel = True

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Optional[float] = None,
        loss_weight: float = 1.0,
        loss_name: str = "loss_focal",
        use_sigmoid: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name, reduction=reduction)
        name = type(self).__name__
        if not use_sigmoid:
            raise ValueError(
                f"{name}: use_sigmoid=False is the softmax focal loss; use SoftmaxFocalLoss"
            )
        if alpha is not None:
            if not 0 <= alpha <= 1:
                raise ValueError(f"{name}: alpha must be in [0, 1], got {alpha}")
            alpha = float(alpha)
        self.gamma = _check_gamma(name, gamma)
        self.alpha = alpha
        self.use_sigmoid = True

    @property
    def channel_mode(self) -> Optional[bool]:
        """Any channel count: one is the binary focal, K >= 2 one-vs-rest."""
        return None

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}"

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``FL_sigma`` before ``loss_weight``."""
        per_pixel, valid = sigmoid_focal_pixels(inp, self.gamma, self.alpha)
        if avg_factor is None:
            return per_pixel.sum() / valid.sum().clamp_min(1).to(per_pixel.dtype)
        return per_pixel.sum() / (avg_factor + CE_EPS)

    def pixel_values(self, inp: LossInputs) -> Tensor:
        """Per-pixel focal terms summed over classes ``(B, P)``."""
        return sigmoid_focal_pixels(inp, self.gamma, self.alpha)[0]
