"""Constants, the checked input record and the call contract shared by every loss.

Everything here imports torch only. A loss call checks and flattens its inputs once, with
:func:`prepare_inputs`, into a :class:`LossInputs` record: logits ``(B, C, P)`` (the spatial
dimensions of ``(B, C, *spatial)`` flattened to one pixel axis ``P``), labels ``(B, P)``, the
optional per-pixel weight ``(B, P)`` and the ignored label. The label bookkeeping (validity,
range check, class counts) is in :mod:`~mmseg_marginal.losses.labels`.
"""

import contextlib
import math
import warnings
from typing import ContextManager, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

#: Smoothing of every proportion: ``(sum + PROP_EPS) / (N + PROP_EPS)`` (the constant of the
#: authors' released code).
PROP_EPS = 1e-10

#: The float32 machine epsilon mmseg adds to the denominator of its averaged cross-entropy.
CE_EPS = torch.finfo(torch.float32).eps

#: Number of logits elements from which ``compile='auto'`` runs the compiled kernels, and from
#: which the eager kernels use the library's own ``log_softmax``/``argmax`` (below it a few
#: fused elementwise ops are faster on the CPU).
LARGE_NUMEL = 1 << 20

#: Label used for "nothing ignored" (``ignore_index=None``) inside the kernels: no label can
#: take it without also being outside ``[0, K)``.
NO_IGNORE = -(2**62)

#: Values of ``pooling``: one penalty (or Dice) per image, or statistics pooled over the batch.
POOLINGS = ("image", "batch")

#: The per-call ``reduction_override`` values every loss accepts (``'none'``: per-pixel values,
#: only for losses with a per-pixel part).
REDUCTIONS = ("mean", "none")


class LossInputs(NamedTuple):
    """Checked, flattened inputs of one loss call (:func:`prepare_inputs`)."""

    #: Logits ``(B, C, P)``, float32 or float64 (half precision is upcast to float32).
    z: Tensor
    #: Raw int64 labels ``(B, P)`` (ignored and out-of-range values still in them).
    label: Tensor
    #: Optional per-pixel weight ``(B, P)`` (rounded to float32, as mmseg does) in the dtype of
    #: ``z``.
    weight: Optional[Tensor]
    #: Ignored label; None: every pixel counts.
    ignore_index: Optional[int]
    #: Binary mode: one foreground logit channel, labels in {0, 1}.
    binary: bool
    #: Spatial shape of the labels, for per-pixel outputs ``(B, *spatial)``.
    spatial: Tuple[int, ...]

    @property
    def num_classes(self) -> int:
        """K: the channel count, 2 (background, foreground) in binary mode."""
        return 2 if self.binary else self.z.shape[1]

    def pixel_map(self, values: Tensor) -> Tensor:
        """Reshape per-pixel ``values`` ``(B, P)`` to the label's shape ``(B, *spatial)``."""
        return values.reshape(values.shape[0], *self.spatial)


def prepare_inputs(
    cls_score: Tensor,
    label: Tensor,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = 255,
    *,
    use_sigmoid: Optional[bool] = False,
    name: str = "loss",
) -> LossInputs:
    """Check shapes and dtypes once and flatten the spatial dimensions.

    Args:
        cls_score (Tensor): Logits ``(B, C, *spatial)`` with at least one spatial dimension.
        label (Tensor): Integer labels ``(B, *spatial)``.
        weight (Tensor | None): Optional per-pixel weight with the labels' element count.
        ignore_index (int | None): Ignored label; None ignores nothing.
        use_sigmoid (bool | None): True: binary mode, exactly 1 channel. False: softmax over
            ``C >= 2`` channels. None: any channel count (the sigmoid one-vs-rest focal).
        name (str): Used in error messages.

    Returns:
        LossInputs: The record; half-precision logits upcast to float32.

    Raises:
        ValueError: Naming the shape, dtype or channel count that does not fit.
    """
    if cls_score.dim() < 3:
        raise ValueError(
            f"{name}: cls_score must have shape (B, C, *spatial), got {tuple(cls_score.shape)}"
        )
    b, c = cls_score.shape[:2]
    spatial = tuple(cls_score.shape[2:])
    if label.dim() != cls_score.dim() - 1:
        raise ValueError(
            f"{name}: label must have shape (B, *spatial) = {(b, *spatial)}, got "
            f"{tuple(label.shape)}"
        )
    if label.shape[0] != b or tuple(label.shape[1:]) != spatial:
        raise ValueError(
            f"{name}: logits of spatial size {spatial} (batch {b}) and labels of spatial size "
            f"{tuple(label.shape[1:])} (batch {label.shape[0]}) differ; resize the logits to the "
            "label size first (mmseg's decode heads do)"
        )
    if label.dtype.is_floating_point or label.dtype == torch.bool:
        raise ValueError(f"{name}: label must be an integer tensor, got {label.dtype}")
    if not cls_score.dtype.is_floating_point:
        raise ValueError(f"{name}: cls_score must be floating point, got {cls_score.dtype}")
    if use_sigmoid is not None:
        check_channels(c, use_sigmoid=use_sigmoid, name=name)
    z = cls_score
    if z.dtype in (torch.float16, torch.bfloat16):
        z = z.float()
    z = z.reshape(b, c, -1)
    lab = label.reshape(b, -1)
    if lab.dtype != torch.int64:
        lab = lab.long()
    if weight is not None:
        if weight.numel() != lab.numel():
            raise ValueError(
                f"{name}: weight must be a per-pixel weight with the label's shape, got "
                f"{tuple(weight.shape)} for labels of shape {tuple(label.shape)}"
            )
        # rounded to float32 first, as mmseg's losses take it
        weight = weight.reshape(lab.shape).float().to(z.dtype)
    return LossInputs(z, lab, weight, ignore_index, bool(use_sigmoid), spatial)


def check_channels(c: int, *, use_sigmoid: bool, name: str) -> None:
    """Raise ``ValueError`` naming the channel count ``c`` when it does not fit the mode."""
    if use_sigmoid:
        if c != 1:
            raise ValueError(
                f"{name}: use_sigmoid=True is the binary mode and needs 1 logit channel, got {c}"
            )
    elif c < 2:
        raise ValueError(
            f"{name}: softmax mode needs at least 2 class channels, got {c}; use "
            "use_sigmoid=True for a single foreground channel"
        )


def proportion_denominator(count: Tensor, dtype: torch.dtype) -> Tensor:
    """The denominator ``count + PROP_EPS`` of :func:`normalize_proportions`, ``(..., 1)`` in
    ``dtype``, for pixel counts ``count`` ``(...)``."""
    return count.unsqueeze(-1).to(dtype) + PROP_EPS


def normalize_proportions(sums: Tensor, count: Tensor, den: Optional[Tensor] = None) -> Tensor:
    """Class proportions ``(sums + PROP_EPS) / (count + PROP_EPS)``.

    Args:
        sums (Tensor): Per-class sums ``(..., K)`` (pixel counts or summed probabilities).
        count (Tensor): Pixel counts ``(...)``, broadcast over the class axis.
        den (Tensor | None): ``proportion_denominator(count, sums.dtype)`` when the caller
            already has it (several sums over the same pixels). Default: computed here.

    Returns:
        Tensor: ``(..., K)`` in the dtype of ``sums``; all ones where ``count`` and ``sums``
        are 0.
    """
    if den is None:
        den = proportion_denominator(count, sums.dtype)
    return (sums + PROP_EPS) / den


def log_softmax_dim1(z: Tensor) -> Tensor:
    """``log_softmax(z, 1)``; as ``z - logsumexp(z, 1)`` below :data:`LARGE_NUMEL` elements,
    where the CPU ``log_softmax`` over a non-last dimension has a large fixed cost."""
    if z.numel() < LARGE_NUMEL:
        return z - torch.logsumexp(z, 1, keepdim=True)
    return torch.log_softmax(z, 1)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type``.

    ``torch.is_autocast_enabled(device_type)`` (torch >= 2.4); before it, the argument-free
    ``torch.is_autocast_enabled()`` (CUDA) and ``torch.is_autocast_cpu_enabled()`` (CPU), and
    True for other device types (the caller then leaves autocast explicitly).
    """
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: no device argument
        if device_type == "cuda":
            return bool(torch.is_autocast_enabled())
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return True


def full_precision(device_type: str) -> ContextManager:
    """A context in which autocast is off for ``device_type`` (a no-op context where it is
    not on): the losses' sums run in the precision of their inputs."""
    if autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


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


def positive(value: float, what: str, name: str) -> float:
    """``float(value)``; raise ``ValueError`` naming ``what`` unless it is finite and > 0."""
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: {what} must be a finite number > 0, got {value!r}")
    return v


def check_choice(what: str, value: object, choices: Sequence[object], name: str) -> object:
    """Return ``value`` if it is one of ``choices``; else raise ``ValueError`` naming it."""
    if value not in choices:
        raise ValueError(f"{name}: {what} must be one of {tuple(choices)}, got {value!r}")
    return value


def deprecated(name: str, old: str, new: str) -> None:
    """Emit the one ``DeprecationWarning`` of an old argument spelling."""
    warnings.warn(
        f"{name}: {old} is deprecated; use {new} (same behaviour)",
        DeprecationWarning,
        stacklevel=4,
    )


def check_reduction(
    name: str, reduction: Optional[str], *, per_pixel: bool, what: str = "reduction_override"
) -> None:
    """Validate mmseg's ``reduction`` (or per-call ``reduction_override``).

    Raises:
        ValueError: For a value other than ``'mean'``/``'none'``, and for ``'none'`` on a loss
            without a per-pixel value (``per_pixel=False``), saying so.
    """
    if reduction is None or reduction == "mean":
        return
    if reduction == "none" and per_pixel:
        return
    if reduction == "none":
        raise ValueError(
            f"{name}: {what}='none' asks for per-pixel loss values, and this loss has none (it "
            "is a function of whole-image statistics); an OHEMPixelSampler needs a `thresh` "
            "with this loss"
        )
    allowed = "'mean' or 'none'" if per_pixel else "'mean'"
    raise ValueError(f"{name}: {what}={reduction!r} is not supported; use {allowed}")


def check_avg_factor(name: str, avg_factor: Optional[float], *, per_pixel: bool) -> None:
    """Refuse mmseg's ``avg_factor`` on a loss that is not a mean of per-pixel terms."""
    if avg_factor is not None and not per_pixel:
        raise ValueError(
            f"{name}: avg_factor={avg_factor!r} is not supported: the loss is not a mean of "
            "per-pixel terms (it is a function of whole-image statistics)"
        )


def load_class_weight(class_weight: object, name: str) -> Optional[list]:
    """mmseg's ``class_weight``: None, a sequence of floats, or a file path (``.npy``,
    ``.json``; other formats through mmengine's ``load`` when mmengine is installed).

    Raises:
        ValueError: Naming a value that is none of these.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight.endswith(".npy"):
            import numpy as np

            return np.load(class_weight).tolist()
        if class_weight.endswith(".json"):
            import json

            with open(class_weight) as f:
                return list(json.load(f))
        try:
            from mmengine.fileio import load
        except ImportError as exc:
            raise ValueError(
                f"{name}: class_weight file {class_weight!r}: only .npy and .json are read "
                "without mmengine"
            ) from exc
        return list(load(class_weight))
    if isinstance(class_weight, Tensor):
        return class_weight.flatten().tolist()
    try:
        return [float(v) for v in class_weight]  # type: ignore[union-attr]
    except TypeError as exc:
        raise ValueError(
            f"{name}: class_weight must be None, a sequence of numbers or a file path, got "
            f"{class_weight!r}"
        ) from exc
