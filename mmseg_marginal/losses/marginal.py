"""Label-marginal regularizer of Liu et al. (proportions, penalty and ``LabelMarginalLoss``).

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses" (Eq. 5 and Appendix C).

For one image with valid pixels ``V`` (label != ignore_index), ``N = |V|`` and ``K`` classes:

.. math::

    \\hat y_k = \\frac{|\\Omega_k| + \\epsilon}{N + \\epsilon}, \\qquad
    \\hat p_k = \\frac{\\sum_{i \\in V} \\mathrm{softmax}(\\tau z_i)_k + \\epsilon}{N + \\epsilon},
    \\qquad \\epsilon = 10^{-10},

and the penalty is ``R = sum_k |y_k - p_k|`` (L1) or ``R = KL(y || p) = sum_k y_k log(y_k / p_k)``.
Scaling follows the authors' released code, which produced the published numbers: L1 is averaged
over classes (``class_reduction='mean'``, 1/K of the paper's sum), KL is summed over classes
(``'sum'``); images are averaged with equal weight. The temperature ``tau`` (10 in all the
paper's experiments) enters only ``p_hat``.

Binary mode (``use_sigmoid=True``, one foreground channel): the distribution is the two-class
``[1 - p, p]`` with ``p = mean_i sigmoid(tau z_i)``; L1 is ``|y - p|`` and KL is the Bernoulli
``y log(y/p) + (1-y) log((1-y)/(1-p))`` (``class_reduction`` has no effect).
"""

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .fused import check_compile_mode, fused_marginal_stats
from .labels import check_labels, class_counts
from .utils import (
    SegLoss,
    check_binary,
    check_call_overrides,
    flatten_inputs,
    non_negative,
    normalize_proportions,
)

_PENALTIES = ("l1", "kl")
_TARGETS = ("image", "batch", "prior")


def gt_proportions(
    label: Tensor, num_classes: int, ignore_index: Optional[int] = 255
) -> Tuple[Tensor, Tensor]:
    """Ground-truth class proportions per image, by bincount (no one-hot).

    Args:
        label (Tensor): Integer labels ``(B, *spatial)``.
        num_classes (int): Number of classes K.
        ignore_index (int | None): Label to ignore. Default: 255.

    Returns:
        tuple[Tensor, Tensor]: ``props`` ``(B, K)`` float32 with
        ``props[b, k] = (|Omega_bk| + 1e-10) / (N_b + 1e-10)`` (all ones for an image without
        valid pixels) and ``valid_count`` ``(B,)`` int64 ``N_b``.

    Raises:
        ValueError: If a non-ignored label is outside ``[0, num_classes)``.
    """
    lab = label.reshape(label.shape[0], -1).long()
    valid = check_labels(lab, num_classes, ignore_index)
    counts = class_counts(lab, valid, num_classes)
    n = valid.sum(1)
    return normalize_proportions(counts.double(), n).float(), n


def marginal_stats(
    z: Tensor,
    lab: Tensor,
    *,
    ignore_index: Optional[int],
    temperature: float,
    binary: bool = False,
    with_ce: bool = False,
    class_weight: Optional[Tensor] = None,
    pixel_weight: Optional[Tensor] = None,
    with_argmax: bool = False,
    compile: Union[bool, str] = "auto",
) -> Dict[str, Optional[Tensor]]:
    """Everything the marginal losses need from one pass over flattened logits.

    Args:
        z (Tensor): Logits ``(B, C, P)`` (float32/float64).
        lab (Tensor): Labels ``(B, P)``.
        ignore_index (int | None): Ignored label.
        temperature (float): tau.
        binary (bool): Sigmoid mode (``C = 1``, two classes background/foreground).
        with_ce (bool): Also the CE sum (multi-class only).
        class_weight (Tensor | None): ``(K,)`` CE class weights.
        pixel_weight (Tensor | None): ``(B, P)`` CE pixel weights.
        with_argmax (bool): Also the per-class counts of the argmax prediction.
        compile (bool | str): Compiled kernels for the multi-class path.

    Returns:
        dict: ``psum`` ``(B, K')`` (differentiable), ``counts`` and ``am_counts`` ``(B, K')``,
        ``n_valid`` ``(B,)``, ``ce_sum`` and ``ce_denom`` (0-dim); ``K' = 2`` in binary mode.

    Raises:
        ValueError: Naming a label outside ``[0, K')`` that is not ignore_index.
    """
    if binary:
        valid = check_labels(lab, 2, ignore_index)
        lab_c = torch.where(valid, lab, 0)
        vf = valid.to(z.dtype)
        zf = z[:, 0]
        fg = (torch.sigmoid(zf * temperature) * vf).sum(1)
        bg = (torch.sigmoid(zf * -temperature) * vf).sum(1)
        am = class_counts((zf > 0).long(), valid, 2) if with_argmax else None
        zero = z.new_zeros(())
        return dict(
            psum=torch.stack([bg, fg], 1),
            counts=class_counts(lab_c, valid, 2),
            am_counts=am,
            n_valid=valid.sum(1),
            ce_sum=zero,
            ce_denom=zero,
        )
    out = fused_marginal_stats(
        z,
        lab,
        ignore_index=ignore_index,
        tau=temperature,
        with_ce=with_ce,
        class_weight=class_weight,
        pixel_weight=pixel_weight,
        with_argmax=with_argmax,
        compile=compile,
    )
    if bool(out.pop("n_bad") > 0):
        check_labels(lab, z.shape[1], ignore_index)  # raises with the offending values
    return out


def predicted_proportions(
    cls_score: Tensor,
    label: Tensor,
    ignore_index: Optional[int] = 255,
    temperature: float = 10.0,
    use_sigmoid: bool = False,
) -> Tensor:
    """Differentiable predicted class proportions per image.

    Args:
        cls_score (Tensor): Logits ``(B, K, *spatial)`` (or ``(B, 1, *spatial)`` with
            ``use_sigmoid=True``).
        label (Tensor): Labels ``(B, *spatial)``; they define the valid pixels (and are checked:
            a label outside ``[0, K)`` that is not ``ignore_index`` raises ``ValueError``).
        ignore_index (int | None): Label to ignore. Default: 255.
        temperature (float): Softmax temperature tau. Default: 10.0.
        use_sigmoid (bool): Binary mode. Default: False.

    Returns:
        Tensor: ``(B, K)`` (``(B, 2)`` = background, foreground in binary mode),
        ``(sum_{i valid} softmax(tau z_i)_k + 1e-10) / (N + 1e-10)``, float32 (or float64 for
        float64 logits).
    """
    z, lab = flatten_inputs(cls_score, label, "predicted_proportions")
    binary = check_binary(z, use_sigmoid=use_sigmoid, name="predicted_proportions")
    out = marginal_stats(z, lab, ignore_index=ignore_index, temperature=temperature, binary=binary)
    return normalize_proportions(out["psum"], out["n_valid"])


def marginal_penalty(
    gt_prop: Tensor,
    pred_prop: Tensor,
    penalty: str = "l1",
    class_reduction: Optional[str] = None,
    binary: bool = False,
) -> Tensor:
    """Per-image penalty ``R(y_hat, p_hat)``.

    Args:
        gt_prop (Tensor): Target proportions ``(B, K)`` (or ``(1, K)``, broadcast).
        pred_prop (Tensor): Predicted proportions ``(B, K)``, strictly positive (as produced by
            :func:`predicted_proportions`; exact zeros are clamped to the smallest normal float
            so that KL stays finite).
        penalty (str): ``'l1'``: ``|y - p|`` per class; ``'kl'``: ``y log(y / p)`` per class
            (``0 log 0 = 0``). Default: ``'l1'``.
        class_reduction (str | None): ``'mean'`` or ``'sum'`` over classes; None picks the
            authors' default (``'mean'`` for L1, ``'sum'`` for KL).
        binary (bool): The two columns are (background, foreground) of one binary problem: L1
            is ``|y_fg - p_fg|``, KL is the Bernoulli KL (sum of both columns);
            ``class_reduction`` is ignored.

    Returns:
        Tensor: ``(B,)`` penalty per image.
    """
    if penalty not in _PENALTIES:
        raise ValueError(f"penalty must be one of {_PENALTIES}, got {penalty!r}")
    if class_reduction is None:
        class_reduction = "mean" if penalty == "l1" else "sum"
    if class_reduction not in ("mean", "sum"):
        raise ValueError(f"class_reduction must be 'mean', 'sum' or None, got {class_reduction!r}")
    gt_prop = gt_prop.to(pred_prop.dtype)
    if penalty == "l1":
        if binary:
            return (gt_prop[..., 1] - pred_prop[..., 1]).abs().expand(pred_prop.shape[0])
        per_class = (gt_prop - pred_prop).abs()
    else:
        pred = pred_prop.clamp_min(torch.finfo(pred_prop.dtype).tiny)
        per_class = torch.xlogy(gt_prop, gt_prop) - torch.xlogy(gt_prop, pred)
        if binary:
            return per_class.sum(-1)
    if class_reduction == "sum":
        return per_class.sum(-1)
    return per_class.mean(-1)


def validate_prior(prior: Optional[Sequence[float]], target: str) -> Optional[Tensor]:
    """Check the ``target``/``prior`` pair; returns the prior as a float64 tensor or None."""
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
    if target != "prior":
        if prior is not None:
            raise ValueError(f"prior is only used with target='prior', got target={target!r}")
        return None
    if prior is None:
        raise ValueError("target='prior' needs prior=[t_1, ..., t_K] (class proportions)")
    t = torch.as_tensor(prior, dtype=torch.float64).flatten()
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"prior must be finite non-negative proportions, got {list(prior)}")
    if t.numel() > 1 and abs(float(t.sum()) - 1.0) > 1e-3:
        raise ValueError(f"prior must sum to 1 (got sum {float(t.sum()):.6g}): {t.tolist()}")
    if t.numel() == 1 and float(t) > 1:
        raise ValueError(f"a binary prior (foreground proportion) must be in [0, 1], got {t}")
    return t


class MarginalMixin:
    """Shared configuration and computation of the two marginal-loss modules (mixed into
    :class:`~mmseg_marginal.losses.utils.SegLoss`)."""

    def _init_mmseg_keys(self, *, use_mask: bool, reduction: str, loss_weight: float) -> None:
        """Check the keys of mmseg's ``CrossEntropyLoss`` dict that have one meaning here (a
        config that merges a marginal loss into a stock head carries them)."""
        name = type(self).__name__
        if use_mask:
            raise ValueError(
                f"{name}: use_mask=True (mmseg's cross-entropy of instance masks) is not "
                "supported; the marginal losses take per-pixel labels (use_mask=False)"
            )
        if reduction != "mean":
            raise ValueError(
                f"{name}: reduction={reduction!r} is not supported; the loss is a mean over "
                "pixels and images (reduction='mean')"
            )
        self.use_mask = False
        self.reduction = "mean"
        self.loss_weight = non_negative(loss_weight, "loss_weight", name)

    def _init_marginal(
        self,
        *,
        penalty: str,
        temperature: float,
        class_reduction: Optional[str],
        target: str,
        prior: Optional[Sequence[float]],
        compile: Union[bool, str],
    ) -> None:
        if penalty not in _PENALTIES:
            raise ValueError(f"penalty must be one of {_PENALTIES}, got {penalty!r}")
        if class_reduction not in (None, "mean", "sum"):
            raise ValueError(
                f"class_reduction must be 'mean', 'sum' or None, got {class_reduction!r}"
            )
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.penalty = penalty
        self.temperature = float(temperature)
        self.class_reduction = class_reduction
        self.target = target
        self._prior = validate_prior(prior, target)
        self.compile = check_compile_mode(compile)
        self.last_stats: Dict[str, Tensor] = {}

    def check_call(self, *, reduction_override: Optional[str], avg_factor: Optional[float]) -> None:
        """Refuse ``reduction_override`` other than None/``'mean'`` and any ``avg_factor``."""
        check_call_overrides(type(self).__name__, reduction_override, avg_factor)

    def _prior_for(self, num_classes: int, binary: bool) -> Tensor:
        t = self._prior
        if binary and t.numel() == 1:
            t = torch.cat([1 - t, t])
        expected = 2 if binary else num_classes
        if t.numel() != expected:
            what = "2 (background, foreground) or 1 (foreground)" if binary else str(expected)
            raise ValueError(
                f"prior has {self._prior.numel()} entries but the logits have "
                f"{num_classes} class channel(s); expected {what}"
            )
        return t

    def _marginal_forward(
        self,
        z: Tensor,
        lab: Tensor,
        *,
        ignore_index: Optional[int],
        binary: bool,
        with_ce: bool = False,
        class_weight: Optional[Tensor] = None,
        pixel_weight: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tensor, Dict[str, Optional[Tensor]]]:
        """Compute ``(R, ce_sum, stats)`` for flattened logits and labels (see
        :func:`marginal_stats`; the kernels run as ``self.compile`` says); sets ``last_stats``
        in training mode."""
        out = marginal_stats(
            z,
            lab,
            ignore_index=ignore_index,
            temperature=self.temperature,
            binary=binary,
            with_ce=with_ce,
            class_weight=class_weight,
            pixel_weight=pixel_weight,
            with_argmax=self.training,
            compile=self.compile,
        )
        psum, counts, n = out["psum"], out["counts"], out["n_valid"]
        if self.target == "batch":
            n_b = n.sum().reshape(1)
            gt = normalize_proportions(counts.sum(0, keepdim=True).double(), n_b).to(z.dtype)
            pred = normalize_proportions(psum.sum(0, keepdim=True), n_b)
            has = n_b > 0
        else:
            if self.target == "prior":
                gt = self._prior_for(z.shape[1], binary).to(z).unsqueeze(0)
            else:
                gt = normalize_proportions(counts.double(), n).to(z.dtype)
            pred = normalize_proportions(psum, n)
            has = n > 0
        r_img = marginal_penalty(
            gt, pred, penalty=self.penalty, class_reduction=self.class_reduction, binary=binary
        )
        r = torch.where(has, r_img, r_img.new_zeros(())).mean()
        if self.training:
            with torch.no_grad():
                y_img = normalize_proportions(counts.double(), n)
                q_img = normalize_proportions(out["am_counts"].double(), n)
                self.last_stats = {
                    "marginal": r.detach().float(),
                    "prop_mae": (y_img - q_img).abs().mean().float(),
                }
        return r, out["ce_sum"], out


@MODELS.register_module()
class LabelMarginalLoss(MarginalMixin, SegLoss):
    """Label-marginal regularizer ``R(y_hat, p_hat)`` (Liu et al., Eq. 5).

    Use it next to any loss in a ``loss_decode`` list::

        loss_decode=[
            dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0),
            dict(type='LabelMarginalLoss', penalty='l1', temperature=10.0, loss_weight=1.0),
        ]

    With the defaults the value is ``mean_b mean_k |y_bk - p_bk|`` (L1) or
    ``mean_b sum_k y_bk log(y_bk / p_bk)`` (KL), proportions as in the module docstring
    (``(sum + 1e-10) / (N + 1e-10)``). The returned value is ``loss_weight * R``.

    Args:
        penalty (str): ``'l1'`` ("Ours(L1)", paper's best weight 1.0) or ``'kl'``
            ("Ours(DKL)", best weight 0.1). Default: ``'l1'``.
        temperature (float): tau of ``softmax(tau z)`` in ``p_hat``. Default: 10.0.
        class_reduction (str | None): ``'mean'`` or ``'sum'`` over classes; None = authors'
            default (``'mean'`` for L1, ``'sum'`` for KL).
        target (str): What ``p_hat`` is matched to. ``'image'``: each image's GT proportions
            (the paper; default). ``'batch'``: batch-level marginal; both the GT proportions and
            the predicted proportions are pooled over all valid pixels of the batch, giving one
            penalty per batch. ``'prior'``: a fixed vector ``prior`` of K proportions for every
            image (the paper's general constraint ``p = t``, for partially labelled data).
        prior (list[float] | None): K proportions (non-negative, summing to 1) for
            ``target='prior'``; in binary mode one foreground proportion or
            ``[background, foreground]``.
        use_sigmoid (bool): Binary mode: ``cls_score`` has one channel, labels are in {0, 1},
            ``p_hat = mean sigmoid(tau z)``. Default: False (softmax over K >= 2 channels).
        loss_weight (float): lambda, the multiplier of the returned value; must be >= 0 (a
            negative weight rewards mismatched proportions). Default: 1.0.
        loss_name (str): Name in mmseg's loss dict (must start with ``loss_`` to be
            back-propagated). Default: ``'loss_marginal'``.
        compile (bool | str): Run the ``torch.compile``d kernels of
            :mod:`~mmseg_marginal.losses.fused` (softmax mode): ``'auto'`` (default) for float32
            logits of at least 2**20 elements, ``True`` always, ``False`` never.
        class_weight (None): Accepted for the keys of mmseg's ``CrossEntropyLoss`` dict; must
            be None (a class weight has no meaning for the proportion penalty).
        avg_non_ignore (bool): Must be True (the default): proportions are always taken over
            the valid pixels.
        use_mask (bool): Must be False.
        reduction (str): Must be ``'mean'`` (images are averaged).

    Notes:
        Images without valid pixels contribute 0 (they still count in the mean over images, as
        in the authors' code); a batch without valid pixels gives 0 with zero gradients. Inputs
        in float16/bfloat16 are computed in float32. After each forward in training mode,
        ``self.last_stats`` holds detached scalars ``'marginal'`` (R before weights) and
        ``'prop_mae'`` (mean over images and classes of ``|y_hat - q|``, ``q`` the proportions
        of the argmax prediction), computed without a second forward.
    """

    def __init__(
        self,
        penalty: str = "l1",
        temperature: float = 10.0,
        class_reduction: Optional[str] = None,
        target: str = "image",
        prior: Optional[Sequence[float]] = None,
        use_sigmoid: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = "loss_marginal",
        compile: Union[bool, str] = "auto",
        class_weight: Optional[Union[Sequence[float], str]] = None,
        avg_non_ignore: bool = True,
        use_mask: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name)
        self._init_marginal(
            penalty=penalty,
            temperature=temperature,
            class_reduction=class_reduction,
            target=target,
            prior=prior,
            compile=compile,
        )
        name = type(self).__name__
        if class_weight is not None:
            raise ValueError(
                f"{name}: class_weight={class_weight!r} has no meaning for the proportion "
                "penalty; put the class weights on the CE term (CrossEntropyLoss or "
                "CEMarginalLoss)"
            )
        if not avg_non_ignore:
            raise ValueError(
                f"{name}: avg_non_ignore={avg_non_ignore!r} is not supported; proportions are "
                "always taken over the valid (non-ignored) pixels"
            )
        self._init_mmseg_keys(use_mask=use_mask, reduction=reduction, loss_weight=loss_weight)
        self.use_sigmoid = use_sigmoid
        self.avg_non_ignore = True
        self.class_weight = None

    def extra_repr(self) -> str:
        """Extra repr."""
        return (
            f"penalty={self.penalty!r}, temperature={self.temperature}, "
            f"class_reduction={self.class_reduction!r}, target={self.target!r}, "
            f"use_sigmoid={self.use_sigmoid}, loss_weight={self.loss_weight}"
        )

    def compute_loss(
        self, logits: Tensor, label: Tensor, weight: Optional[Tensor], ignore_index: Optional[int]
    ) -> Tensor:
        """``R`` (before ``loss_weight``); ``weight`` must be None: a per-pixel weight has no
        meaning for a proportion constraint. Shapes as in ``forward``, ``K = 1`` with
        ``use_sigmoid=True``."""
        if weight is not None:
            raise NotImplementedError(
                "LabelMarginalLoss does not support a per-pixel `weight` (e.g. from a pixel "
                "sampler): the label-marginal constraint is on whole-image proportions"
            )
        name = type(self).__name__
        z, lab = flatten_inputs(logits, label, name)
        binary = check_binary(z, use_sigmoid=self.use_sigmoid, name=name)
        r, _, _ = self._marginal_forward(z, lab, ignore_index=ignore_index, binary=binary)
        return r
