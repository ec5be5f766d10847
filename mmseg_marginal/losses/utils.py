"""Input checks and label bookkeeping shared by the losses of this package.

Everything here works on logits of shape ``(B, C, *spatial)`` (2-D ``(B, C, H, W)`` or 3-D
``(B, C, D, H, W)``) and labels of shape ``(B, *spatial)``. Spatial dimensions are flattened to
one pixel axis ``P``; per-class pixel counts are obtained with ``torch.bincount`` on
``label + b * (K + 1)`` (one extra bin per image collects ignored pixels), so no one-hot
``B x K x P`` label tensor is ever built.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

#: The smoothing constant of the authors' released code: a proportion is
#: ``(sum + PROP_EPS) / (N + PROP_EPS)``.
PROP_EPS = 1e-10


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


def log_softmax_dim1(z: Tensor) -> Tensor:
    """``log_softmax(z, 1)``; as ``z - logsumexp(z, 1)`` below 2**20 elements, where this CPU
    build's ``log_softmax`` over a non-last dimension is pathologically slow (milliseconds
    for a few hundred elements), and with the fused kernel above."""
    if z.numel() < (1 << 20):
        return z - torch.logsumexp(z, 1, keepdim=True)
    return torch.log_softmax(z, 1)


def valid_mask(label: Tensor, ignore_index: Optional[int]) -> Tensor:
    """Boolean mask of the pixels whose label is not ``ignore_index``."""
    if ignore_index is None:
        return torch.ones_like(label, dtype=torch.bool)
    return label != ignore_index


def check_labels(
    label: Tensor, num_classes: int, ignore_index: Optional[int], valid: Optional[Tensor] = None
) -> Tensor:
    """Raise if a non-ignored label is outside ``[0, num_classes)``.

    Args:
        label (Tensor): Integer labels of any shape.
        num_classes (int): Number of classes K (2 in binary mode).
        ignore_index (int | None): Label value to ignore.
        valid (Tensor, optional): Precomputed :func:`valid_mask`.

    Returns:
        Tensor: The boolean valid mask.

    Raises:
        ValueError: Naming the offending label value.
    """
    if valid is None:
        valid = valid_mask(label, ignore_index)
    bad = valid & ((label < 0) | (label >= num_classes))
    if bool(bad.any()):
        values = torch.unique(label[bad])[:5].tolist()
        raise ValueError(
            f"label value {values[0]} is outside [0, {num_classes}) and is not ignore_index="
            f"{ignore_index} (offending values: {values}); check num_classes, reduce_zero_label "
            "and ignore_index"
        )
    return valid


def class_counts(label: Tensor, valid: Tensor, num_classes: int) -> Tensor:
    """Per-image class pixel counts by bincount.

    Args:
        label (Tensor): Labels ``(B, P)`` already checked with :func:`check_labels`.
        valid (Tensor): Valid mask ``(B, P)``.
        num_classes (int): K.

    Returns:
        Tensor: Counts ``(B, K)`` as int64.
    """
    b = label.shape[0]
    k1 = num_classes + 1
    offset = torch.arange(b, device=label.device).unsqueeze(1) * k1
    idx = torch.where(valid, label, num_classes) + offset
    counts = torch.bincount(idx.reshape(-1), minlength=b * k1).reshape(b, k1)
    return counts[:, :num_classes]


def weighted_class_sums(label: Tensor, values: Tensor, valid: Tensor, num_classes: int) -> Tensor:
    """Per-image sums of ``values`` over the pixels of each GT class, ``(B, K)``.

    Differentiable in ``values`` (``scatter_add``), used for the Dice intersections
    ``sum_{i in Omega_k} p_ik`` from the gathered probability of the true class.
    """
    b = label.shape[0]
    lab = torch.where(valid, label, num_classes)
    out = values.new_zeros(b, num_classes + 1)
    out = out.scatter_add(1, lab, torch.where(valid, values, values.new_zeros(())))
    return out[:, :num_classes]


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
