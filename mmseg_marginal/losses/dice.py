"""Dice-family baselines of Liu et al., correct for multi-class labels with ignored pixels.

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses" (Eq. 1 and the DiceCE / LogDiceCE / DiceBiasCE baselines); Sudre et al.,
"Generalised Dice overlap as a deep learning loss function for highly unbalanced
segmentations", DLMIA 2017.

Unlike mmseg 1.2.2's ``DiceLoss`` (one Dice over all classes flattened together, ignored pixels
left in the prediction), every quantity here is per image and per class over the valid pixels
``V`` only:

.. math::

    I_k = \\sum_{i \\in \\Omega_k} w_i p_{ik}, \\quad S_k = \\sum_{i \\in V} w_i p_{ik}, \\quad
    G_k = \\sum_{i \\in \\Omega_k} w_i, \\quad
    \\mathrm{Dice}_k = \\frac{2 I_k + \\delta}{S_k + G_k + \\delta}

(``w`` = optional per-pixel weight, 1 by default; ``delta`` = ``smooth``, 1e-6). The intersection
comes from the probability of the true class gathered per pixel and summed by class with
``scatter_add``; no one-hot label tensor is built.

Absent classes: the per-image loss is the **mean over the classes present in that image's
ground truth** (``G_k > 0``). An absent class has no region to overlap; including it with a
smoothing term would reward predicting nothing, and Eq. 1 of the paper (the decomposition of
``-sum_k log Dice_k``) is a sum over present classes. Since ``I_k >= 0`` and ``delta > 0``,
``Dice_k >= delta / (S_k + G_k + delta) > 0``, so ``-log Dice`` is always finite. An image
without valid pixels (or without present classes) contributes 0; images are averaged with equal
weight.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .marginal import _normalize, check_binary, marginal_stats
from .utils import (
    check_labels,
    flatten_inputs,
    log_softmax_dim1,
    pixel_weight,
    weighted_class_sums,
)


def dice_statistics(
    cls_score: Tensor,
    label: Tensor,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = 255,
    use_sigmoid: bool = False,
    name: str = "dice",
) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-image, per-class soft intersections and sizes.

    Args:
        cls_score (Tensor): Logits ``(B, K, *spatial)`` (``K = 1`` with ``use_sigmoid``).
        label (Tensor): Labels ``(B, *spatial)``.
        weight (Tensor | None): Optional per-pixel weight, shape of ``label``.
        ignore_index (int | None): Label to ignore. Default: 255.
        use_sigmoid (bool): Binary foreground-only mode: ``p = sigmoid(z)``, one class
            (the foreground, label 1). Default: False.
        name (str): Used in error messages.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``I``, ``S``, ``G`` of shape ``(B, K)`` (``(B, 1)`` in
        binary mode), as defined in the module docstring.
    """
    z, lab = flatten_inputs(cls_score, label, name)
    # sums over all pixels: keep them out of autocast (fp16 would overflow past 65504)
    with torch.autocast(device_type=z.device.type, enabled=False):
        return _dice_statistics(z, lab, weight, ignore_index, use_sigmoid, name)


def _dice_statistics(
    z: Tensor,
    lab: Tensor,
    weight: Optional[Tensor],
    ignore_index: Optional[int],
    use_sigmoid: bool,
    name: str,
) -> Tuple[Tensor, Tensor, Tensor]:
    binary = check_binary(z, use_sigmoid, name)
    k = 2 if binary else z.shape[1]
    valid = check_labels(lab, k, ignore_index)
    lab_c = torch.where(valid, lab, 0)
    w = valid.to(z.dtype)
    pw = pixel_weight(weight, lab, name)
    if pw is not None:
        w = w * pw.to(z.dtype)
    if binary:
        p = torch.sigmoid(z[:, 0])
        y = lab_c.to(z.dtype)
        inter = (p * y * w).sum(1, keepdim=True)
        size_p = (p * w).sum(1, keepdim=True)
        size_g = (y * w).sum(1, keepdim=True)
        return inter, size_p, size_g
    p = log_softmax_dim1(z).exp()
    size_p = torch.bmm(p, w.unsqueeze(2)).squeeze(2)
    p_true = torch.gather(p, 1, lab_c.unsqueeze(1)).squeeze(1)
    inter = weighted_class_sums(lab_c, p_true * w, valid, k)
    size_g = weighted_class_sums(lab_c, w, valid, k)
    return inter, size_p, size_g


def _mean_over_present(per_class: Tensor, present: Tensor) -> Tensor:
    """Mean over present classes per image (0 without any), then mean over images."""
    n_present = present.sum(1)
    total = torch.where(present, per_class, per_class.new_zeros(())).sum(1)
    per_image = total / n_present.clamp_min(1).to(per_class.dtype)
    return per_image.mean()


@MODELS.register_module()
class ClasswiseDiceLoss(nn.Module):
    """Per-class soft Dice loss, linear ``1 - Dice`` or logarithmic ``-log Dice``.

    ``loss = loss_weight * mean_b mean_{k present in b} f(Dice_bk)`` with ``f(d) = 1 - d``
    (``log=False``, "DiceCE" baseline with CE in a loss list, weight 0.1) or ``f(d) = -log d``
    (``log=True``, "LogDiceCE"). See the module docstring for ``Dice_k`` and the treatment of
    absent classes. ``use_sigmoid=True`` is the foreground-only binary Dice (one logit channel,
    labels in {0, 1}; images without foreground contribute 0).

    Args:
        log (bool): Logarithmic form. Default: False.
        use_sigmoid (bool): Binary foreground-only Dice. Default: False.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_dice'``.
        smooth (float): ``delta`` > 0 added to numerator and denominator. Default: 1e-6.
    """

    def __init__(
        self,
        log: bool = False,
        use_sigmoid: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = "loss_dice",
        smooth: float = 1e-6,
    ) -> None:
        super().__init__()
        if not smooth > 0:
            raise ValueError(f"smooth must be > 0 (keeps -log Dice finite), got {smooth}")
        self.log = log
        self.use_sigmoid = use_sigmoid
        self.smooth = float(smooth)
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
        """Compute the loss.

        Args:
            cls_score (Tensor): Logits ``(B, K, *spatial)``.
            label (Tensor): Labels ``(B, *spatial)``.
            weight (Tensor | None): Optional per-pixel weight multiplying each pixel's terms.
            ignore_index (int | None): Label to ignore. Default: 255.

        Returns:
            Tensor: Scalar loss.
        """
        inter, size_p, size_g = dice_statistics(
            cls_score, label, weight, ignore_index, self.use_sigmoid, type(self).__name__
        )
        dice = (2 * inter + self.smooth) / (size_p + size_g + self.smooth)
        per_class = -torch.log(dice) if self.log else 1 - dice
        return self.loss_weight * _mean_over_present(per_class, size_g > 0)

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name


@MODELS.register_module()
class GeneralizedDiceLoss(nn.Module):
    """Generalized Dice loss (Sudre et al. 2017), per image, multi-class softmax.

    .. math::

        GDL = 1 - 2 \\frac{\\sum_k w_k I_k}{\\sum_k w_k (S_k + G_k)}, \\qquad
        w_k = 1 / G_k^2

    with ``I, S, G`` as in the module docstring. Classes absent from the image's ground truth get
    ``w_k = 0`` (their ``1 / 0^2`` weight is undefined). An image without valid pixels
    contributes 0; images are averaged with equal weight.

    Args:
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_gdice'``.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = "loss_gdice") -> None:
        super().__init__()
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
        """Compute the loss (arguments as :meth:`ClasswiseDiceLoss.forward`)."""
        inter, size_p, size_g = dice_statistics(
            cls_score, label, weight, ignore_index, False, type(self).__name__
        )
        present = size_g > 0
        safe_g = torch.where(present, size_g, torch.ones_like(size_g))
        w = torch.where(present, safe_g.reciprocal().square(), size_g.new_zeros(()))
        num = 2 * (w * inter).sum(1)
        den = (w * (size_p + size_g)).sum(1)
        has = den > 0
        gdl = torch.where(has, 1 - num / torch.where(has, den, torch.ones_like(den)), 0.0)
        return self.loss_weight * gdl.mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name


@MODELS.register_module()
class DiceBiasLoss(nn.Module):
    """Label-marginal term of the Dice loss alone, ``DB = sum_k log(p_hat_k + y_hat_k)``.

    From Eq. 1 of Liu et al.: ``-sum_k log Dice_k = DF + DB - sum_k (log 2 + log y_hat_k)``.
    "DiceBiasCE" is CE plus this term in a loss list. Per image, over the classes present in the
    ground truth (the classes Eq. 1 sums over), with the proportions of
    :mod:`~mmseg_marginal.losses.marginal` (``(sum + 1e-10) / (N + 1e-10)``, temperature 1 by
    default, the plain softmax of Eq. 1); images averaged with equal weight, an image without
    valid pixels contributes 0. Minimizing it pushes ``p_hat`` towards the vertex of the largest
    ground-truth proportion (Proposition 1).

    Args:
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_dice_bias'``.
        temperature (float): tau of ``softmax(tau z)`` in ``p_hat``. Default: 1.0.
    """

    def __init__(
        self, loss_weight: float = 1.0, loss_name: str = "loss_dice_bias", temperature: float = 1.0
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
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
        """Compute ``loss_weight * mean_b sum_{k present} log(p_hat_bk + y_hat_bk)``."""
        name = type(self).__name__
        if weight is not None:
            raise NotImplementedError(
                f"{name} does not support a per-pixel `weight`: it is a constraint on "
                "whole-image proportions"
            )
        z, lab = flatten_inputs(cls_score, label, name)
        check_binary(z, False, name)
        out = marginal_stats(z, lab, ignore_index, self.temperature)
        counts, n, psum = out["counts"], out["n_valid"], out["psum"]
        y_hat = _normalize(counts.double(), n).to(z.dtype)
        p_hat = _normalize(psum, n)
        present = counts > 0
        terms = torch.where(present, torch.log(p_hat + y_hat), p_hat.new_zeros(()))
        return self.loss_weight * terms.sum(1).mean()

    @property
    def loss_name(self) -> str:
        """Name of the loss item in mmseg's loss dict."""
        return self._loss_name
