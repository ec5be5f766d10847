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
weight. These defaults are the definitions of the paper's text.

The baselines **as the authors' released code ran them** (repository by-liu/SegLossBias, with
segmentation-models-pytorch 0.2.1's multi-class Dice) are options of the same classes:

* ``pooling='batch'``: ``I, S, G`` summed over the whole batch before the Dice (one Dice per
  class per batch) instead of one per image (``'image'``);
* ``absent='zero'``: a class absent from the ground truth (of the batch, or of the image) gets a
  loss of 0 but still counts in the mean over all ``K`` classes, instead of being left out of
  the mean (``'skip'``);
* ``smooth=0, eps=1e-7``: ``Dice_k = (2 I_k + smooth) / max(S_k + G_k + smooth, eps)`` and, for
  the log form, ``-log max(Dice_k, eps)``.

``ClasswiseDiceLoss(pooling='batch', absent='zero', smooth=0.0, eps=1e-7)`` is the authors'
Dice, DiceCE and LogDiceCE; ``GeneralizedDiceLoss(use_sigmoid=True)`` and
``DiceBiasLoss(use_sigmoid=True)`` are the paper's binary (one foreground logit) GDice and DB1,
and ``DiceBiasLoss(class_reduction='mean')`` has the scale of the authors' multi-class
``CrossEntropyWithDB``.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from .base import SegLoss
from .fused import KernelRunner
from .inputs import (
    POOLINGS,
    PROP_EPS,
    LossInputs,
    check_choice,
    deprecated,
    full_precision,
    log_softmax_dim1,
    normalize_proportions,
    positive,
    prepare_inputs,
)
from .labels import check_labels, weighted_class_sums
from .marginal import marginal_stats

_ABSENT = ("skip", "zero")
_DB_REDUCTIONS = ("sum", "mean")


def resolve_pooling(name: str, pooling: str, reduction: str) -> Tuple[str, str]:
    """``(pooling, reduction)`` with the deprecated ``reduction='image'|'batch'`` moved to
    ``pooling``.

    Raises:
        ValueError: For an unknown pooling, or both spellings given.
    """
    if reduction in POOLINGS:
        if pooling != "image":
            raise ValueError(f"{name}: give pooling={pooling!r} or reduction={reduction!r}")
        deprecated(
            name, f"reduction={reduction!r} (image-vs-batch pooling)", f"pooling={reduction!r}"
        )
        return reduction, "mean"
    return check_choice("pooling", pooling, POOLINGS, name), reduction


def dice_statistics(
    cls_score: Tensor,
    label: Tensor,
    weight: Optional[Tensor] = None,
    ignore_index: Optional[int] = 255,
    use_sigmoid: bool = False,
    name: str = "dice",
    with_background: bool = False,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Per-image, per-class soft intersections and sizes.

    Args:
        cls_score (Tensor): Logits ``(B, K, *spatial)`` (``K = 1`` with ``use_sigmoid``).
        label (Tensor): Labels ``(B, *spatial)``.
        weight (Tensor | None): Optional per-pixel weight, shape of ``label``.
        ignore_index (int | None): Label to ignore. Default: 255.
        use_sigmoid (bool): Binary mode: ``p = sigmoid(z)`` is the probability of the
            foreground (label 1). Default: False.
        name (str): Used in error messages.
        with_background (bool): In binary mode, also the background class (label 0,
            probability ``1 - p``) as class 0: ``(B, 2)`` outputs. Default: False (foreground
            only, ``(B, 1)``).

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``I``, ``S``, ``G`` of shape ``(B, K)`` (``(B, 1)`` or
        ``(B, 2)`` in binary mode), as defined in the module docstring.
    """
    inp = prepare_inputs(cls_score, label, weight, ignore_index, use_sigmoid=use_sigmoid, name=name)
    return _dice_statistics(inp, with_background=with_background)


def _dice_statistics(inp: LossInputs, *, with_background: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`dice_statistics` of checked inputs (computed outside autocast: fp16 sums over
    all pixels would overflow past 65504)."""
    with full_precision(inp.z.device.type):
        return _dice_sums(inp, with_background=with_background)


def _dice_sums(inp: LossInputs, *, with_background: bool) -> Tuple[Tensor, Tensor, Tensor]:
    z, lab, k = inp.z, inp.label, inp.num_classes
    valid = check_labels(lab, k, inp.ignore_index)
    lab_c = torch.where(valid, lab, 0)
    w = valid.to(z.dtype)
    if inp.weight is not None:
        w = w * inp.weight
    if inp.binary:
        p = torch.sigmoid(z[:, 0])
        y = lab_c.to(z.dtype)
        inter = (p * y * w).sum(1, keepdim=True)
        size_p = (p * w).sum(1, keepdim=True)
        size_g = (y * w).sum(1, keepdim=True)
        if not with_background:
            return inter, size_p, size_g
        q, n = 1 - p, 1 - y  # background probability and indicator
        inter_bg = (q * n * w).sum(1, keepdim=True)
        size_p_bg = (q * w).sum(1, keepdim=True)
        size_g_bg = (n * w).sum(1, keepdim=True)
        return (
            torch.cat([inter_bg, inter], 1),
            torch.cat([size_p_bg, size_p], 1),
            torch.cat([size_g_bg, size_g], 1),
        )
    p = log_softmax_dim1(z).exp()
    size_p = torch.bmm(p, w.unsqueeze(2)).squeeze(2)
    p_true = torch.gather(p, 1, lab_c.unsqueeze(1)).squeeze(1)
    inter = weighted_class_sums(lab_c, p_true * w, valid, k)
    size_g = weighted_class_sums(lab_c, w, valid, k)
    return inter, size_p, size_g


def _pool(stats: Tuple[Tensor, ...], pooling: str) -> Tuple[Tensor, ...]:
    """``pooling='batch'``: sum the per-image statistics over the batch, ``(1, K)``."""
    if pooling == "batch":
        return tuple(t.sum(0, keepdim=True) for t in stats)
    return stats


def _mean_over_present(per_class: Tensor, present: Tensor) -> Tensor:
    """Mean over present classes per image (0 without any), then mean over images."""
    n_present = present.sum(1)
    total = torch.where(present, per_class, per_class.new_zeros(())).sum(1)
    per_image = total / n_present.clamp_min(1).to(per_class.dtype)
    return per_image.mean()


def _mean_over_all(per_class: Tensor, present: Tensor) -> Tensor:
    """Absent classes count as 0 in the mean over all K classes, then mean over rows."""
    total = torch.where(present, per_class, per_class.new_zeros(())).sum(1)
    return (total / per_class.shape[1]).mean()


class ClasswiseDiceLoss(SegLoss):
    """Per-class soft Dice loss, linear ``1 - Dice`` or logarithmic ``-log Dice``.

    ``loss = loss_weight * mean_b mean_{k present in b} f(Dice_bk)`` with ``f(d) = 1 - d``
    (``log=False``, "DiceCE" baseline with CE in a loss list, weight 0.1) or ``f(d) = -log d``
    (``log=True``, "LogDiceCE"). See the module docstring for ``Dice_k`` and the treatment of
    absent classes. ``use_sigmoid=True`` is the foreground-only binary Dice (one logit channel,
    labels in {0, 1}; images without foreground contribute 0).

    With the options of the authors' released code (``pooling='batch', absent='zero',
    smooth=0, eps=1e-7``)

    .. math::

        \\mathrm{Dice}_k = \\frac{2 \\sum_{b,i} w p_{bik} [y_{bi} = k]}
        {\\max(\\sum_{b,i} w (p_{bik} + [y_{bi} = k]), \\epsilon)}, \\qquad
        \\mathrm{loss} = \\frac{1}{K} \\sum_{k: G_k > 0} f(\\mathrm{Dice}_k)

    with ``f(d) = -log max(d, eps)`` in the log form.

    Args:
        log (bool): Logarithmic form. Default: False.
        use_sigmoid (bool): Binary foreground-only Dice. Default: False.
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_dice'``.
        smooth (float): ``delta`` >= 0 added to numerator and denominator. Default: 1e-6.
        pooling (str): ``'image'`` (one Dice per image and class, images averaged) or
            ``'batch'`` (statistics pooled over the batch: one Dice per class). Default:
            ``'image'``.
        absent (str): Classes without ground-truth pixels (in the image, or in the batch with
            ``pooling='batch'``): ``'skip'`` (left out of the mean over classes) or
            ``'zero'`` (loss 0, counted in the mean over all K classes). Default: ``'skip'``.
        eps (float): ``>= 0``; when > 0 the denominator is clamped to at least ``eps`` and the
            log form uses ``-log max(Dice, eps)``. Default: 0 (no clamp).
        reduction (str): mmseg's reduction, ``'mean'``; ``'image'``/``'batch'`` are the
            deprecated spelling of ``pooling``.

    No per-pixel value: ``reduction_override='none'`` and ``avg_factor`` raise ``ValueError``.
    """

    def __init__(
        self,
        log: bool = False,
        use_sigmoid: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = "loss_dice",
        smooth: float = 1e-6,
        pooling: str = "image",
        absent: str = "skip",
        eps: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        name = type(self).__name__
        pooling, reduction = resolve_pooling(name, pooling, reduction)
        super().__init__(loss_weight=loss_weight, loss_name=loss_name, reduction=reduction)
        if not (smooth >= 0 and eps >= 0):
            raise ValueError(f"{name}: smooth and eps must be >= 0, got {smooth}, {eps}")
        if not (smooth > 0 or eps > 0):
            raise ValueError(
                f"{name}: smooth={smooth} and eps={eps}: one of them must be > 0 (keeps the "
                "Dice of an empty class and -log Dice finite)"
            )
        self.log = log
        self.use_sigmoid = use_sigmoid
        self.smooth = float(smooth)
        self.eps = float(eps)
        self.pooling = pooling
        self.absent = check_choice("absent", absent, _ABSENT, name)

    def extra_repr(self) -> str:
        return (
            f"log={self.log}, use_sigmoid={self.use_sigmoid}, pooling={self.pooling!r}, "
            f"absent={self.absent!r}, smooth={self.smooth}, eps={self.eps}"
        )

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``mean_b mean_k f(Dice_bk)`` (before ``loss_weight``); the optional per-pixel
        ``weight`` multiplies each pixel's terms."""
        stats = _dice_statistics(inp, with_background=False)
        inter, size_p, size_g = _pool(stats, self.pooling)
        den = size_p + size_g + self.smooth
        if self.eps > 0:
            den = den.clamp_min(self.eps)
        dice = (2 * inter + self.smooth) / den
        if self.log:
            per_class = -torch.log(dice.clamp_min(self.eps) if self.eps > 0 else dice)
        else:
            per_class = 1 - dice
        reduce = _mean_over_present if self.absent == "skip" else _mean_over_all
        return reduce(per_class, size_g > 0)


class GeneralizedDiceLoss(SegLoss):
    """Generalized Dice loss (Sudre et al. 2017), multi-class softmax or binary sigmoid.

    .. math::

        GDL = 1 - 2 \\frac{\\sum_k w_k I_k}{\\sum_k w_k (S_k + G_k)}, \\qquad
        w_k = 1 / G_k^2

    with ``I, S, G`` as in the module docstring, per image (``pooling='image'``, images
    averaged with equal weight) or pooled over the batch (``'batch'``). Classes absent from the
    ground truth get ``w_k = 0`` (their ``1 / 0^2`` weight is undefined); a unit without valid
    pixels contributes 0. Binary mode (``use_sigmoid=True``, one foreground logit, labels in
    {0, 1}): the two classes background (probability ``1 - sigmoid(z)``) and foreground
    (``sigmoid(z)``), the paper's binary GDice. With ``eps > 0`` the weights are
    ``1 / max(G_k^2, eps)`` (an absent class then weighs ``1 / eps``) and each class's
    ``w_k (S_k + G_k)`` is clamped to at least ``eps`` before the sum, the form of the authors'
    binary ``GeneralisedDiceLoss`` (which pools the batch, ``pooling='batch'``, with
    ``eps=1e-7``).

    Args:
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_gdice'``.
        use_sigmoid (bool): Binary mode. Default: False.
        pooling (str): ``'image'`` or ``'batch'``. Default: ``'image'``.
        eps (float): ``>= 0``, see above. Default: 0.
        reduction (str): mmseg's reduction, ``'mean'``; ``'image'``/``'batch'`` are the
            deprecated spelling of ``pooling``.

    No per-pixel value: ``reduction_override='none'`` and ``avg_factor`` raise ``ValueError``.
    """

    def __init__(
        self,
        loss_weight: float = 1.0,
        loss_name: str = "loss_gdice",
        use_sigmoid: bool = False,
        pooling: str = "image",
        eps: float = 0.0,
        reduction: str = "mean",
    ) -> None:
        name = type(self).__name__
        pooling, reduction = resolve_pooling(name, pooling, reduction)
        super().__init__(loss_weight=loss_weight, loss_name=loss_name, reduction=reduction)
        if not eps >= 0:
            raise ValueError(f"{name}: eps must be >= 0, got {eps}")
        self.use_sigmoid = use_sigmoid
        self.pooling = pooling
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"use_sigmoid={self.use_sigmoid}, pooling={self.pooling!r}, eps={self.eps}"

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``mean GDL`` (before ``loss_weight``)."""
        stats = _dice_statistics(inp, with_background=True)
        inter, size_p, size_g = _pool(stats, self.pooling)
        if self.eps > 0:
            w = size_g.square().clamp_min(self.eps).reciprocal()
            num = 2 * (w * inter).sum(1)
            den = (w * (size_p + size_g)).clamp_min(self.eps).sum(1)
        else:
            present = size_g > 0
            safe_g = torch.where(present, size_g, torch.ones_like(size_g))
            w = torch.where(present, safe_g.reciprocal().square(), size_g.new_zeros(()))
            num = 2 * (w * inter).sum(1)
            den = (w * (size_p + size_g)).sum(1)
        # a unit without valid pixels gives 0 (a NaN in the logits still reaches num and den)
        empty = (size_g.sum(1) == 0).to(den.device)
        gdl = torch.where(empty, 0.0, 1 - num / torch.where(empty, torch.ones_like(den), den))
        return gdl.mean()


class DiceBiasLoss(SegLoss):
    """Label-marginal term of the Dice loss alone, ``DB = sum_k log(p_hat_k + y_hat_k)``.

    From Eq. 1 of Liu et al.: ``-sum_k log Dice_k = DF + DB - sum_k (log 2 + log y_hat_k)``.
    "DiceBiasCE" is CE plus this term in a loss list. By default (``class_reduction='sum'``,
    the paper's text) per image, over the classes present in the ground truth (the classes
    Eq. 1 sums over), with the proportions of :mod:`~mmseg_marginal.losses.marginal`
    (``(sum + 1e-10) / (N + 1e-10)``, temperature 1 by default, the plain softmax of Eq. 1);
    images averaged with equal weight, an image without valid pixels contributes 0. Minimizing
    it pushes ``p_hat`` towards the vertex of the largest ground-truth proportion
    (Proposition 1).

    ``class_reduction='mean'`` is the scale of the authors' ``CrossEntropyWithDB``:
    ``mean_b mean_k log(p_hat_bk + y_hat_bk + 1e-10)`` over **all** K classes (an absent
    class contributes ``log(p_hat_k + ~0)``), about ``1/K`` of the sum; an image without valid
    pixels contributes 0 (there: ``log 2``).

    Binary mode (``use_sigmoid=True``, one foreground logit, labels in {0, 1}): the paper's
    foreground term ``DB1 = log(p_hat_1 + y_hat_1 + 1e-10)`` with ``p_hat_1`` the mean of
    ``sigmoid(tau z)`` over the valid pixels, averaged over images (as ``CrossEntropyWithDB``
    with one channel; an image without valid pixels contributes 0).

    Args:
        loss_weight (float): Default: 1.0.
        loss_name (str): Default: ``'loss_dice_bias'``.
        temperature (float): tau of ``softmax(tau z)`` (``sigmoid(tau z)``) in ``p_hat``.
            Default: 1.0.
        use_sigmoid (bool): Binary mode (DB1). Default: False.
        class_reduction (str): ``'sum'`` (over present classes) or ``'mean'`` (over all
            classes); multi-class only. Default: ``'sum'``.
    """

    def __init__(
        self,
        loss_weight: float = 1.0,
        loss_name: str = "loss_dice_bias",
        temperature: float = 1.0,
        use_sigmoid: bool = False,
        class_reduction: str = "sum",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name)
        name = type(self).__name__
        temperature = positive(temperature, "temperature", name)
        check_choice("class_reduction", class_reduction, _DB_REDUCTIONS, name)
        if use_sigmoid and class_reduction != "sum":
            raise ValueError(
                f"{name}: class_reduction={class_reduction!r} is a multi-class option; the "
                "binary mode (use_sigmoid=True) has the single foreground term DB1"
            )
        self.temperature = temperature
        self.use_sigmoid = use_sigmoid
        self.class_reduction = class_reduction
        self.kernels = KernelRunner("auto")

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, use_sigmoid={self.use_sigmoid}, "
            f"class_reduction={self.class_reduction!r}"
        )

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``mean_b sum_{k present} log(p_hat_bk + y_hat_bk)`` (or the variant chosen by
        ``use_sigmoid`` / ``class_reduction``), before ``loss_weight``.

        Raises:
            NotImplementedError: For a per-pixel ``weight`` (a constraint on whole-image
                proportions has none).
        """
        name = type(self).__name__
        if inp.weight is not None:
            raise NotImplementedError(
                f"{name} does not support a per-pixel `weight`: it is a constraint on "
                "whole-image proportions"
            )
        st = marginal_stats(inp, temperature=self.temperature, runner=self.kernels)
        counts, n, psum, binary, z = st.counts, st.n_valid, st.psum, inp.binary, inp.z
        y_hat = normalize_proportions(counts.double(), n).to(z.dtype)
        p_hat = normalize_proportions(psum, n)
        if binary:
            db1 = torch.log(p_hat[:, 1] + y_hat[:, 1] + PROP_EPS)
            return torch.where(n > 0, db1, db1.new_zeros(())).mean()
        if self.class_reduction == "mean":
            per_image = torch.log(p_hat + y_hat + PROP_EPS).mean(1)
            return torch.where(n > 0, per_image, per_image.new_zeros(())).mean()
        present = counts > 0
        terms = torch.where(present, torch.log(p_hat + y_hat), p_hat.new_zeros(()))
        return terms.sum(1).mean()
