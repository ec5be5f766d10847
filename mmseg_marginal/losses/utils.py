"""Input checks, proportions and the mmseg loss interface shared by the losses of this package.

Everything here works on logits of shape ``(B, C, *spatial)`` (2-D ``(B, C, H, W)`` or 3-D
``(B, C, D, H, W)``) and labels of shape ``(B, *spatial)``; :func:`flatten_inputs` checks them
and flattens the spatial dimensions to one pixel axis ``P``. The label bookkeeping (validity,
label range, class counts) is in :mod:`~mmseg_marginal.losses.labels`.
"""

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

#: The smoothing constant of the authors' released code: a proportion is
#: ``(sum + PROP_EPS) / (N + PROP_EPS)``.
PROP_EPS = 1e-10


def normalize_proportions(sums: Tensor, count: Tensor) -> Tensor:
    """Class proportions ``(sums + PROP_EPS) / (count + PROP_EPS)``.

    Args:
        sums (Tensor): Per-class sums ``(..., K)`` (pixel counts or summed probabilities).
        count (Tensor): Pixel counts ``(...)``, broadcast over the class axis.

    Returns:
        Tensor: ``(..., K)`` in the dtype of ``sums``; all ones where ``count`` and ``sums``
        are 0.
    """
    return (sums + PROP_EPS) / (count.unsqueeze(-1).to(sums.dtype) + PROP_EPS)


def flatten_inputs(cls_score: Tensor, label: Tensor, name: str = "loss") -> Tuple[Tensor, Tensor]:
    """Check shapes and flatten the spatial dimensions.

    Args:
        cls_score (Tensor): Logits ``(B, C, *spatial)`` with at least one spatial dimension.
        label (Tensor): Integer labels ``(B, *spatial)``.
        name (str): Name used in error messages.

    Returns:
        tuple[Tensor, Tensor]: Logits ``(B, C, P)`` upcast to float32 when they are float16 or
        bfloat16 (float64 stays float64), and labels ``(B, P)`` as int64.

    Raises:
        ValueError: On a spatial or batch size mismatch, a non-integer label, or too few dims.
    """
    if cls_score.dim() < 3:
        raise ValueError(
            f"{name}: cls_score must have shape (B, C, *spatial), got {tuple(cls_score.shape)}"
        )
    if label.dim() != cls_score.dim() - 1:
        raise ValueError(
            f"{name}: label must have shape (B, *spatial) = "
            f"{(cls_score.shape[0], *cls_score.shape[2:])}, got {tuple(label.shape)}"
        )
    if label.shape[0] != cls_score.shape[0] or label.shape[1:] != cls_score.shape[2:]:
        raise ValueError(
            f"{name}: logits of spatial size {tuple(cls_score.shape[2:])} (batch "
            f"{cls_score.shape[0]}) and labels of spatial size {tuple(label.shape[1:])} (batch "
            f"{label.shape[0]}) differ; resize the logits to the label size first "
            "(mmseg's decode heads do)"
        )
    if label.dtype.is_floating_point or label.dtype == torch.bool:
        raise ValueError(f"{name}: label must be an integer tensor, got {label.dtype}")
    if not cls_score.dtype.is_floating_point:
        raise ValueError(f"{name}: cls_score must be floating point, got {cls_score.dtype}")
    if cls_score.dtype in (torch.float16, torch.bfloat16):
        cls_score = cls_score.float()
    b, c = cls_score.shape[:2]
    return cls_score.reshape(b, c, -1), label.reshape(b, -1).long()


def check_binary(z: Tensor, *, use_sigmoid: bool, name: str) -> bool:
    """Validate the channel count of logits ``(B, C, ...)`` against ``use_sigmoid``.

    Args:
        z (Tensor): Logits with the class channels on dimension 1.
        use_sigmoid (bool): Binary mode: exactly one (foreground) channel. Otherwise softmax
            over at least 2 channels.
        name (str): Name used in error messages.

    Returns:
        bool: True in binary mode.

    Raises:
        ValueError: Naming the channel count when it does not fit the mode.
    """
    c = z.shape[1]
    if use_sigmoid:
        if c != 1:
            raise ValueError(
                f"{name}: use_sigmoid=True is the binary mode and needs 1 logit channel, got {c}"
            )
        return True
    if c < 2:
        raise ValueError(
            f"{name}: softmax mode needs at least 2 class channels, got {c}; use "
            "use_sigmoid=True for a single foreground channel"
        )
    return False


def non_negative(value: float, what: str, name: str) -> float:
    """``float(value)``; raise ``ValueError`` naming ``what`` unless it is finite and >= 0.

    A negative weight on the marginal penalty would reward predicted proportions that differ
    from the target ones (and a negative weight on a whole loss would ascend it).
    """
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(
            f"{name}: {what} must be a finite number >= 0, got {value!r} (a negative weight "
            "ascends the loss; on the marginal penalty it rewards predicted class proportions "
            "that differ from the target ones)"
        )
    return v


def check_call_overrides(
    name: str, reduction_override: Optional[str], avg_factor: Optional[float]
) -> None:
    """Refuse the per-call arguments of mmseg's losses that the marginal losses cannot honour.

    ``reduction_override='none'`` is what mmseg's ``OHEMPixelSampler`` asks for when it has no
    ``thresh``; a proportion penalty has no per-pixel value.
    """
    if reduction_override not in (None, "mean"):
        raise ValueError(
            f"{name}: reduction_override={reduction_override!r} is not supported: the loss is a "
            "mean over pixels and images, with no per-pixel value (an OHEMPixelSampler needs a "
            "`thresh` with this loss)"
        )
    if avg_factor is not None:
        raise ValueError(
            f"{name}: avg_factor={avg_factor!r} is not supported; the CE term is averaged over "
            "the valid pixels (avg_non_ignore=True) or all pixels (avg_non_ignore=False)"
        )


def log_softmax_dim1(z: Tensor) -> Tensor:
    """``log_softmax(z, 1)``; as ``z - logsumexp(z, 1)`` below 2**20 elements, where this CPU
    build's ``log_softmax`` over a non-last dimension is pathologically slow (milliseconds
    for a few hundred elements), and with the fused kernel above."""
    if z.numel() < (1 << 20):
        return z - torch.logsumexp(z, 1, keepdim=True)
    return torch.log_softmax(z, 1)


def pixel_weight(
    weight: Optional[Tensor], label_flat: Tensor, name: str = "loss"
) -> Optional[Tensor]:
    """Flatten mmseg's optional per-pixel ``weight`` (``(B, *spatial)``) to ``(B, P)``."""
    if weight is None:
        return None
    if weight.numel() != label_flat.numel():
        raise ValueError(
            f"{name}: weight must be a per-pixel weight with the label's shape, got "
            f"{tuple(weight.shape)} for {label_flat.shape[1]} pixels per image"
        )
    return weight.reshape(label_flat.shape).float()


def valid_pixel_weight(
    valid: Tensor, weight: Optional[Tensor], label_flat: Tensor, *, dtype: torch.dtype, name: str
) -> Tensor:
    """Per-pixel weight ``(B, P)`` of the Dice and focal sums: validity times mmseg's optional
    per-pixel ``weight`` (see :func:`pixel_weight`), in ``dtype``."""
    w = valid.to(dtype)
    pw = pixel_weight(weight, label_flat, name)
    if pw is not None:
        w = w * pw.to(dtype)
    return w


class SegLoss(nn.Module):
    """Base of the registered losses: mmseg's loss-module interface in one place.

    mmseg's decode heads call ``loss(seg_logits, seg_label, weight=seg_weight,
    ignore_index=...)`` and file the result under ``loss.loss_name``; mmseg's pixel samplers may
    add ``reduction_override``. :meth:`forward` returns ``loss_weight * compute_loss(...)``;
    subclasses implement :meth:`compute_loss` and may refuse per-call options in
    :meth:`check_call` (accepted and ignored by default, as the Dice and focal losses do).

    Args:
        loss_weight (float): Multiplier of the loss.
        loss_name (str): Name of the loss item in mmseg's loss dict (must start with ``loss_``
            to be back-propagated).
    """

    def __init__(self, *, loss_weight: float, loss_name: str) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name

    def forward(
        self,
        cls_score: Tensor,
        label: Tensor,
        weight: Optional[Tensor] = None,
        ignore_index: Optional[int] = 255,
        reduction_override: Optional[str] = None,
        avg_factor: Optional[float] = None,
        **kwargs,
    ) -> Tensor:
        """Compute ``loss_weight * compute_loss(...)``.

        Args:
            cls_score (Tensor): Logits ``(B, K, H, W)`` or ``(B, K, D, H, W)`` (``K = 1`` for
                the binary modes of the losses with ``use_sigmoid``).
            label (Tensor): Labels ``(B, H, W)`` or ``(B, D, H, W)``.
            weight (Tensor | None): Optional per-pixel weight, shape of ``label`` (from a pixel
                sampler); its meaning, or refusal, is the subclass's.
            ignore_index (int | None): Label to ignore. Default: 255.
            reduction_override (str | None): mmseg's per-call reduction; see
                :meth:`check_call`.
            avg_factor (float | None): mmseg's per-call averaging factor; see
                :meth:`check_call`.

        Returns:
            Tensor: Scalar loss.
        """
        self.check_call(reduction_override=reduction_override, avg_factor=avg_factor)
        return self.loss_weight * self.compute_loss(
            cls_score, label, weight=weight, ignore_index=ignore_index
        )

    def check_call(self, *, reduction_override: Optional[str], avg_factor: Optional[float]) -> None:
        """Refuse per-call options the loss cannot honour (default: accept and ignore them)."""

    def compute_loss(
        self, logits: Tensor, label: Tensor, weight: Optional[Tensor], ignore_index: Optional[int]
    ) -> Tensor:
        """The scalar loss before ``loss_weight``.

        Called by :meth:`forward` with its arguments (``logits`` is its ``cls_score``), the last
        two as keywords.
        """
        raise NotImplementedError
