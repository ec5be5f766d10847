"""The loss-module base class: mmseg's call contract in one place (torch only)."""

from typing import Optional

import torch.nn as nn
from torch import Tensor

from .inputs import LossInputs, check_avg_factor, check_reduction, prepare_inputs


class SegLoss(nn.Module):
    """Base of the loss modules: mmseg's loss-module call contract.

    mmseg's decode heads call ``loss(seg_logits, seg_label, weight=seg_weight,
    ignore_index=...)`` and file the result under ``loss.loss_name``; mmseg's
    ``OHEMPixelSampler`` without ``thresh`` calls ``loss(..., weight=None, ignore_index=...,
    reduction_override='none')`` and ranks the pixels by the returned per-pixel values.
    :meth:`forward` checks the call, builds the input record once
    (:func:`~mmseg_marginal.losses.prepare_inputs`) and returns
    ``loss_weight * compute(...)`` (``loss_weight * pixel_values(...)`` for
    ``reduction_override='none'``).

    Subclasses set ``per_pixel`` (True where the loss is, or contains, a mean of per-pixel
    terms: they accept ``reduction_override='none'`` and ``avg_factor``) and implement
    ``compute`` (and ``pixel_values`` when ``per_pixel``).

    Args:
        loss_weight (float): Multiplier of the loss.
        loss_name (str): Name of the loss item in mmseg's loss dict (must start with ``loss_``
            to be back-propagated).
        reduction (str): mmseg's ``reduction``; must be ``'mean'`` (per-pixel values are asked
            per call with ``reduction_override='none'``).

    Raises:
        ValueError: For a ``reduction`` other than ``'mean'``.
    """

    #: Whether the loss has per-pixel values (``reduction_override='none'``, ``avg_factor``).
    per_pixel = False

    def __init__(self, *, loss_weight: float, loss_name: str, reduction: str = "mean") -> None:
        super().__init__()
        if reduction != "mean":
            what = (
                "per-pixel values are asked per call with reduction_override='none'"
                if self.per_pixel
                else "the loss has no per-pixel value"
            )
            raise ValueError(
                f"{type(self).__name__}: reduction={reduction!r} is not supported; the loss is "
                f"a mean over pixels and images (reduction='mean'); {what}"
            )
        self.reduction = "mean"
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name

    @property
    def channel_mode(self) -> Optional[bool]:
        """``use_sigmoid`` for the channel check of the inputs (None: any channel count)."""
        return bool(getattr(self, "use_sigmoid", False))

    def forward(
        self,
        cls_score: Tensor,
        label: Tensor,
        weight: Optional[Tensor] = None,
        avg_factor: Optional[float] = None,
        reduction_override: Optional[str] = None,
        ignore_index: Optional[int] = 255,
        **kwargs: object,
    ) -> Tensor:
        """mmseg's loss call.

        Args:
            cls_score (Tensor): Logits ``(B, K, H, W)`` or ``(B, K, D, H, W)`` (``K = 1`` in
                the binary modes, ``use_sigmoid=True``).
            label (Tensor): Integer labels ``(B, H, W)`` or ``(B, D, H, W)``.
            weight (Tensor | None): Optional per-pixel weight, shape of ``label`` (from a pixel
                sampler).
            avg_factor (float | None): Divisor of the per-pixel sum in place of the pixel
                count (losses with ``per_pixel`` only).
            reduction_override (str | None): None or ``'mean'``: the loss; ``'none'``: the
                per-pixel values ``(B, *spatial)`` (losses with ``per_pixel`` only).
            ignore_index (int | None): Label to ignore; None: every pixel counts. Default: 255.

        Returns:
            Tensor: The scalar loss, or the per-pixel values.

        Raises:
            ValueError: For an override the loss cannot honour, an unknown keyword, or inputs
                that do not fit (named in the message).
        """
        name = type(self).__name__
        if kwargs:
            raise ValueError(f"{name}: unexpected keyword arguments {sorted(kwargs)}")
        check_reduction(name, reduction_override, per_pixel=self.per_pixel)
        check_avg_factor(name, avg_factor, per_pixel=self.per_pixel)
        inp = prepare_inputs(
            cls_score, label, weight, ignore_index, use_sigmoid=self.channel_mode, name=name
        )
        if reduction_override == "none":
            out = inp.pixel_map(self.pixel_values(inp))
        else:
            out = self.compute(inp, avg_factor)
        # a weight of 1 leaves the value as it is (one autograd node less)
        return out if self.loss_weight == 1 else self.loss_weight * out

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """The scalar loss before ``loss_weight``."""
        raise NotImplementedError

    def pixel_values(self, inp: LossInputs) -> Tensor:
        """Per-pixel values ``(B, P)`` before ``loss_weight`` (0 at ignored pixels)."""
        raise NotImplementedError
