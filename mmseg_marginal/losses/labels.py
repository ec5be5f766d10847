"""Label bookkeeping shared by the losses, the fused kernels, the analysis and the metrics.

Every function here works on integer label maps. The losses flatten them to ``(B, P)`` (one row
per image, ``P`` pixels); :func:`valid_mask`, :func:`out_of_range_values` and
:func:`check_labels` take any shape.

* A pixel is *valid* when its label is not ``ignore_index`` (``None``: no label is ignored).
* A valid label outside ``[0, K)`` is an error: :func:`check_labels` raises one ``ValueError``
  naming the value; :func:`out_of_range_values` lists such values for callers that word their
  own message (:func:`~mmseg_marginal.evaluation.metrics.image_proportion_counts`), and
  :func:`label_masks` marks them without a host synchronization, so that it can run inside
  ``torch.compile``'d kernels (:mod:`~mmseg_marginal.losses.fused`), and :func:`count_labels`
  counts them.
* Per-class pixel counts come from ``torch.bincount`` on ``label + b * (K + 1)`` (one extra bin
  per image collects the invalid pixels), so no one-hot ``B x K x P`` label tensor is built.
"""

from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor


def valid_mask(label: Tensor, ignore_index: Optional[int]) -> Tensor:
    """Boolean mask, shape of ``label``, of the pixels whose label is not ``ignore_index``."""
    if ignore_index is None:
        return torch.ones_like(label, dtype=torch.bool)
    return label != ignore_index


def out_of_range_values(
    label: Tensor, num_classes: int, valid: Optional[Tensor] = None
) -> List[int]:
    """Distinct label values outside ``[0, num_classes)``, in increasing order.

    Args:
        label (Tensor): Integer labels of any shape.
        num_classes (int): Number of classes K.
        valid (Tensor, optional): Boolean mask, shape of ``label``: only these pixels are
            looked at (e.g. :func:`valid_mask`). Default: every pixel.

    Returns:
        list[int]: Empty when every (valid) label is a class index.
    """
    bad = (label < 0) | (label >= num_classes)
    if valid is not None:
        bad = bad & valid
    if not bool(bad.any()):
        return []
    return torch.unique(label[bad]).tolist()


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
        ValueError: Naming the smallest offending label value (and up to five of them).
    """
    if valid is None:
        valid = valid_mask(label, ignore_index)
    values = out_of_range_values(label, num_classes, valid)
    if values:
        raise ValueError(
            f"label value {values[0]} is outside [0, {num_classes}) and is not ignore_index="
            f"{ignore_index} (offending values: {values[:5]}); check num_classes, "
            "reduce_zero_label and ignore_index"
        )
    return valid


def label_masks(
    label: Tensor, num_classes: int, ignore_index: Optional[int]
) -> Tuple[Tensor, Tensor]:
    """Validity and clean labels without a host synchronization (traceable by dynamo).

    A pixel is valid when its label lies in ``[0, num_classes)`` and is not ignored. The other
    non-ignored pixels carry bad labels; :func:`count_labels` counts them (the caller raises
    through :func:`check_labels` when there are any).

    Args:
        label (Tensor): Integer labels of any shape.
        num_classes (int): Number of classes K.
        ignore_index (int | None): Label value to ignore.

    Returns:
        tuple[Tensor, Tensor]: ``valid`` (bool, shape of ``label``) and ``clean`` (``label``
        clamped to ``[0, num_classes)``: equal to ``label`` where it is valid, a safe index
        everywhere).
    """
    clean = label.clamp(0, num_classes - 1)
    valid = clean == label
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        valid = valid & (label != ignore_index)
    return valid, clean


#: Widest label range (ignored label included) that :func:`count_labels` bins directly.
MAX_BINNED_LABEL = 1 << 12


def count_labels(
    label: Tensor, num_classes: int, ignore_index: Optional[int]
) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-image class pixel counts, valid-pixel counts and the number of bad labels, from
    one ``bincount`` of the raw labels.

    Each image's labels are clamped to ``[lo - 1, hi]``, with ``[lo, hi)`` the smallest range
    that holds the classes and ``ignore_index`` (when it is within
    :data:`MAX_BINNED_LABEL` of them), and counted in bins of their own: the class bins give
    the counts, the ``ignore_index`` bin the ignored pixels, the rest the bad labels.

    Args:
        label (Tensor): Raw integer labels ``(B, P)``.
        num_classes (int): K.
        ignore_index (int | None): Label value to ignore.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``counts`` ``(B, K)``, ``n_valid`` ``(B,)`` and
        ``n_bad`` (0-dim: non-ignored labels outside ``[0, K)``), int64.
    """
    lo, hi = 0, num_classes
    binned = ignore_index is not None and -MAX_BINNED_LABEL <= ignore_index < MAX_BINNED_LABEL
    if binned:
        lo, hi = min(lo, ignore_index), max(hi, ignore_index + 1)
    b, width = label.shape[0], hi - lo + 2
    # bin j of image i counts the label lo - 1 + j (the ends: everything below lo, from hi on)
    start = 1 - lo
    idx = label.clamp(lo - 1, hi) + torch.arange(
        start, start + b * width, width, device=label.device
    ).view(b, 1)
    bins = torch.bincount(idx.view(-1), minlength=b * width).view(b, width)
    counts = bins[:, start : start + num_classes]
    n_ignored: Union[Tensor, int] = 0
    if binned:
        n_ignored = bins[:, start + ignore_index].sum()
        if 0 <= ignore_index < num_classes:
            counts = counts.index_fill(1, torch.tensor([ignore_index], device=label.device), 0)
    elif ignore_index is not None:
        n_ignored = (label == ignore_index).sum()
    n_valid = counts.sum(1)
    return counts, n_valid, label.numel() - n_valid.sum() - n_ignored


def class_counts(label: Tensor, valid: Tensor, num_classes: int) -> Tensor:
    """Per-image class pixel counts ``(B, K)`` (int64) over the valid pixels.

    Args:
        label (Tensor): Labels ``(B, P)``, in ``[0, num_classes)`` where ``valid``.
        valid (Tensor): Valid mask ``(B, P)``.
        num_classes (int): K.
    """
    b = label.shape[0]
    k1 = num_classes + 1
    idx = torch.where(valid, label, num_classes)
    idx = idx + torch.arange(0, b * k1, k1, device=label.device).view(b, 1)
    counts = torch.bincount(idx.view(-1), minlength=b * k1).view(b, k1)
    return counts[:, :num_classes]


def weighted_class_sums(label: Tensor, values: Tensor, valid: Tensor, num_classes: int) -> Tensor:
    """Per-image sums of ``values`` over the pixels of each GT class, ``(B, K)``.

    Differentiable in ``values`` (``scatter_add``), used for the Dice intersections
    ``sum_{i in Omega_k} p_ik`` from the gathered probability of the true class.

    Args:
        label (Tensor): Labels ``(B, P)``, in ``[0, num_classes)`` where ``valid``.
        values (Tensor): Per-pixel values ``(B, P)``.
        valid (Tensor): Valid mask ``(B, P)``; invalid pixels add nothing.
        num_classes (int): K.
    """
    b = label.shape[0]
    lab = torch.where(valid, label, num_classes)
    out = values.new_zeros(b, num_classes + 1)
    out = out.scatter_add(1, lab, torch.where(valid, values, values.new_zeros(())))
    return out[:, :num_classes]
