"""Label-marginal regularizer of Liu et al. (proportions, penalty and ``LabelMarginalLoss``).

Reference: Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses" (Eq. 5 and Appendix C).

For one image with valid pixels ``V`` (label != ignore_index), ``N = |V|`` and ``K`` classes:

.. math::

    \\hat y_k = \\frac{|\\Omega_k| + \\epsilon}{N + \\epsilon}, \\qquad
    \\hat p_k = \\frac{\\sum_{i \\in V} \\mathrm{softmax}(\\tau z_i)_k + \\epsilon}{N + \\epsilon},
    \\qquad \\epsilon = 10^{-10},

and the penalty is ``R = sum_k |y_k - p_k|`` (L1) or ``R = KL(y || p) = sum_k y_k log(y_k / p_k)``.
Scaling follows the authors' released code: L1 is averaged over classes
(``class_reduction='mean'``, 1/K of the paper's sum), KL is summed over classes (``'sum'``);
images are averaged with equal weight. The temperature ``tau`` (10 in all the paper's
experiments) enters only ``p_hat``. ``pooling='batch'`` sums counts and probabilities over the
batch before the proportions (one penalty per batch); a ``prior`` replaces ``y_hat`` by fixed
proportions.

Binary mode (``use_sigmoid=True``, one foreground channel): the distribution is the two-class
``[1 - p, p]`` with ``p = mean_i sigmoid(tau z_i)``; L1 is ``|y - p|`` and KL is the Bernoulli
``y log(y/p) + (1-y) log((1-y)/(1-p))`` (``class_reduction`` has no effect).
"""

from typing import Any, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import SegLoss
from .fused import (
    FusedMarginalStats,
    KernelOptions,
    KernelRunner,
    stats_backward,
    stats_forward,
)
from .inputs import (
    CE_EPS,
    NO_IGNORE,
    POOLINGS,
    LossInputs,
    check_choice,
    deprecated,
    full_precision,
    non_negative,
    normalize_proportions,
    positive,
    prepare_inputs,
    proportion_denominator,
)
from .labels import check_labels, class_counts

PENALTIES = ("l1", "kl")
CLASS_REDUCTIONS = (None, "mean", "sum")
_TARGETS = ("image", "batch", "prior")


class MarginalStats(NamedTuple):
    """Per-image statistics of one pass over the logits (:func:`marginal_stats`); ``K' = 2``
    (background, foreground) in binary mode."""

    #: ``(B, K')`` sum over valid pixels of ``softmax(tau z)`` (differentiable).
    psum: Tensor
    #: ``(B, K')`` int64 ground-truth pixel counts.
    counts: Tensor
    #: ``(B,)`` int64 number of valid pixels.
    n_valid: Tensor
    #: 0-dim (weighted) CE sum over valid pixels (differentiable; 0 without ``with_ce``).
    ce_sum: Tensor
    #: 0-dim CE denominator: sum of the class weights of the valid pixels (binary: their
    #: count); 0 without ``with_ce``.
    ce_denom: Tensor
    #: ``(B, K')`` int64 counts of the argmax prediction; None without ``with_argmax``.
    am_counts: Optional[Tensor]


class LossStats(NamedTuple):
    """Training statistics of a marginal loss (detached 0-dim float32 tensors)."""

    #: The regularizer ``R(y_hat, p_hat)`` before ``marginal_weight`` and ``loss_weight``.
    marginal: Tensor
    #: Mean over images and classes of ``|y_hat_bk - q_bk|``, ``q`` the proportions of the
    #: argmax prediction over the valid pixels.
    prop_mae: Tensor


def marginal_stats(
    inp: LossInputs,
    *,
    temperature: float,
    runner: KernelRunner,
    with_ce: bool = False,
    class_weight: Optional[Tensor] = None,
    with_argmax: bool = False,
) -> MarginalStats:
    """Everything the marginal losses need, from one fused pass over the logits.

    Args:
        inp (LossInputs): Checked inputs; ``inp.weight`` weights the CE term only.
        temperature (float): tau.
        runner (KernelRunner): Runs (compiled or eager) and counts the kernels.
        with_ce (bool): Also the CE sum and its denominator.
        class_weight (Tensor | None): ``(K,)`` CE class weights; in binary mode one element,
            the weight of the foreground term.
        with_argmax (bool): Also the per-class counts of the argmax prediction (the first
            maximal class; in binary mode foreground where ``z > 0``).

    Returns:
        MarginalStats: The statistics.

    Raises:
        ValueError: Naming a label outside ``[0, K')`` that is not ignore_index.
    """
    options = _kernel_options(inp, temperature, runner, with_ce=with_ce, with_argmax=with_argmax)
    z, label, cw, pw = _kernel_args(inp, class_weight, with_ce)
    with full_precision(z.device.type):
        out = FusedMarginalStats.apply(z, label, cw, pw, options, inp.binary)
    ce, denom, psum, counts, am_counts, n_valid, n_bad = out
    _raise_on_bad_labels(inp, n_bad)
    return MarginalStats(psum, counts, n_valid, ce, denom, am_counts if with_argmax else None)


def _kernel_options(
    inp: LossInputs,
    temperature: float,
    runner: KernelRunner,
    *,
    with_ce: bool,
    with_argmax: bool,
) -> KernelOptions:
    """The :class:`~mmseg_marginal.losses.fused.KernelOptions` of one call on ``inp``."""
    return KernelOptions(
        ignore_index=NO_IGNORE if inp.ignore_index is None else int(inp.ignore_index),
        tau=float(temperature),
        with_ce=with_ce,
        with_argmax=with_argmax,
        use_compile=not inp.binary and runner.use_compile(inp.z),
        runner=runner,
    )


def _kernel_args(
    inp: LossInputs, class_weight: Optional[Tensor], with_ce: bool
) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
    """Logits (``(B, P)`` foreground logits in binary mode), labels, CE class weights and
    per-pixel CE weights, as the fused functions take them."""
    z = inp.z.reshape(inp.z.shape[0], -1) if inp.binary else inp.z.contiguous()
    cw = None if class_weight is None else class_weight.to(z.dtype)
    return z, inp.label, cw, inp.weight if with_ce else None


def _raise_on_bad_labels(inp: LossInputs, n_bad: Tensor) -> None:
    if n_bad.item() > 0:
        check_labels(inp.label, inp.num_classes, inp.ignore_index)  # raises, naming the values


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
    counts = class_counts(torch.where(valid, lab, 0), valid, num_classes)
    n = valid.sum(1)
    return normalize_proportions(counts.double(), n).float(), n


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
        temperature (float): tau > 0. Default: 10.0.
        use_sigmoid (bool): Binary mode (one foreground channel). Default: False.

    Returns:
        Tensor: ``(B, K)`` (``(B, 2)`` = background, foreground in binary mode),
        ``(sum_{i valid} softmax(tau z_i)_k + 1e-10) / (N + 1e-10)``, float32 (or float64 for
        float64 logits).
    """
    name = "predicted_proportions"
    tau = positive(temperature, "temperature", name)
    inp = prepare_inputs(cls_score, label, None, ignore_index, use_sigmoid=use_sigmoid, name=name)
    st = marginal_stats(inp, temperature=tau, runner=KernelRunner("auto"))
    return normalize_proportions(st.psum, st.n_valid)


def default_class_reduction(penalty: str, class_reduction: Optional[str]) -> str:
    """``class_reduction``, or the authors' default for ``penalty`` when it is None (``'mean'``
    for L1, ``'sum'`` for KL)."""
    if class_reduction is not None:
        return class_reduction
    return "mean" if penalty == "l1" else "sum"


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
        pred_prop (Tensor): Predicted proportions ``(B, K)``, strictly positive (exact zeros are
            clamped to the smallest normal float so that KL stays finite).
        penalty (str): ``'l1'``: ``|y - p|`` per class; ``'kl'``: ``y log(y / p)`` per class
            (``0 log 0 = 0``). Default: ``'l1'``.
        class_reduction (str | None): ``'mean'`` or ``'sum'`` over classes; None picks the
            authors' default (``'mean'`` for L1, ``'sum'`` for KL).
        binary (bool): The two columns are (background, foreground) of one binary problem: L1
            is ``|y_fg - p_fg|``, KL is the Bernoulli KL (sum of both columns);
            ``class_reduction`` is ignored.

    Returns:
        Tensor: ``(B,)`` penalty per image.

    Raises:
        ValueError: For an unknown ``penalty`` or ``class_reduction``.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    if class_reduction not in CLASS_REDUCTIONS:
        raise ValueError(f"class_reduction must be 'mean', 'sum' or None, got {class_reduction!r}")
    class_reduction = default_class_reduction(penalty, class_reduction)
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


def _penalty_grad(
    gt_prop: Tensor, pred_prop: Tensor, penalty: str, class_reduction: str, binary: bool
) -> Tensor:
    """``d R_b / d p_hat_b`` of :func:`marginal_penalty` per row, the shape of ``pred_prop``
    (``sign(p - y)`` for L1, ``-y / p`` for KL, ``/ K`` for the class mean)."""
    gt_prop = gt_prop.to(pred_prop.dtype)
    if penalty == "l1":
        d = torch.sign(pred_prop - gt_prop)
        if binary:  # |y_fg - p_fg|: the background column has no gradient
            return F.pad(d[..., 1:], (1, 0))
    else:
        tiny = torch.finfo(pred_prop.dtype).tiny
        d = torch.where(pred_prop >= tiny, -gt_prop / pred_prop.clamp_min(tiny), 0.0)
        if binary:
            return d
    return d / pred_prop.shape[-1] if class_reduction == "mean" else d


class MarginalObjective(NamedTuple):
    """A marginal loss as a function of the statistics of one pass:
    ``ce_sum / ce_divisor + weight * R`` (:class:`FusedMarginalLoss`)."""

    #: ``'l1'`` or ``'kl'``.
    penalty: str
    #: ``'mean'`` or ``'sum'`` over classes (resolved).
    class_reduction: str
    #: ``'image'`` or ``'batch'``.
    pooling: str
    #: Fixed target proportions ``(K',)`` (float64), or None for the ground truth's.
    prior: Optional[Tensor]
    #: lambda, the weight of ``R``.
    weight: float
    #: Divisor of the CE sum; None: the CE denominator plus ``CE_EPS`` (mmseg's
    #: ``avg_non_ignore``). Unused without the CE term.
    ce_divisor: Optional[float]
    #: Binary mode (background, foreground columns).
    binary: bool


def marginal_term(
    psum: Tensor, counts: Tensor, n_valid: Tensor, objective: MarginalObjective
) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """``R`` (0-dim: the penalty per image, or of the pooled batch, averaged) from the class
    sums ``psum`` ``(B, K')``, the ground-truth ``counts`` ``(B, K')`` and ``n_valid``
    ``(B,)``; and what :func:`marginal_term_grad` needs. The proportions are taken in the
    dtype of ``psum``."""
    if objective.pooling == "batch":
        psum, counts = psum.sum(0, keepdim=True), counts.sum(0, keepdim=True)
        n_valid = n_valid.sum(0).reshape(1)
    den = proportion_denominator(n_valid, psum.dtype)  # shared by both proportions
    pred = normalize_proportions(psum, n_valid, den)
    if objective.prior is not None:
        gt = objective.prior.to(psum).unsqueeze(0)
    else:
        gt = normalize_proportions(counts.to(psum.dtype), n_valid, den)
    kind, reduction, binary = objective.penalty, objective.class_reduction, objective.binary
    r_img = marginal_penalty(gt, pred, penalty=kind, class_reduction=reduction, binary=binary)
    if objective.prior is not None:
        # an image without valid pixels has p_hat = 1 (no pixel, smoothed), the prior not
        r_img = torch.where(n_valid > 0, r_img, r_img.new_zeros(()))
    # without a prior, such an image has y_hat = p_hat = 1 (smoothed), so R = 0 exactly
    return r_img.mean(), (gt, pred, den, n_valid)


def marginal_term_grad(
    parts: Tuple[Tensor, ...], objective: MarginalObjective, batch_size: int
) -> Tensor:
    """``dR / dpsum`` ``(B, K')`` of :func:`marginal_term` (``parts``: its second output)."""
    gt, pred, den, n_valid = parts
    kind, reduction, binary = objective.penalty, objective.class_reduction, objective.binary
    d = _penalty_grad(gt, pred, kind, reduction, binary)
    if objective.prior is not None:
        d = torch.where((n_valid > 0).unsqueeze(-1), d, 0.0)
    # p_hat = (psum + eps) / den, and R is the mean of the rows' penalties
    d = d / (den * pred.shape[0])
    return d if d.shape[0] == batch_size else d.expand(batch_size, -1)


class FusedMarginalLoss(torch.autograd.Function):
    """A whole marginal loss, ``ce_sum / ce_divisor + weight * R``, from one fused pass.

    Inputs as :class:`~mmseg_marginal.losses.fused.FusedMarginalStats` without ``binary``, then
    a :class:`MarginalObjective` (whose ``binary`` selects the mode). The gradient of ``R``
    with respect to the class sums is written out (:func:`marginal_term_grad`), so that
    autograd records one node for the loss.

    Returns:
        tuple: the loss (0-dim, differentiable) and the tuple of statistics ``(R, counts,
        am_counts, n_valid, n_bad)`` (``R`` 0-dim, the others as in ``FusedMarginalStats``).
    """

    @staticmethod
    def forward(
        ctx: Any,
        z: Tensor,
        label: Tensor,
        cw: Optional[Tensor],
        pw: Optional[Tensor],
        options: KernelOptions,
        objective: MarginalObjective,
    ) -> Tuple[Tensor, ...]:
        ce, denom, psum, counts, am_counts, n_valid, n_bad = stats_forward(
            ctx, z, label, cw, pw, options, binary=objective.binary
        )
        r, parts = marginal_term(psum, counts, n_valid, objective)
        ctx.ce_scale = None
        if options.with_ce:
            if objective.ce_divisor is None:
                ctx.ce_scale = (denom + CE_EPS).reciprocal_()
            else:
                ctx.ce_scale = 1.0 / objective.ce_divisor
            loss = torch.add(ce * ctx.ce_scale, r, alpha=objective.weight)
        else:
            loss = r * objective.weight
        ctx.objective = objective
        ctx.marginal_parts = parts
        ctx.batch_size = psum.shape[0]
        # a tuple is passed through untracked (no autograd bookkeeping per statistic)
        return loss, (r, counts, am_counts, n_valid, n_bad)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: Tensor, _stats: Any) -> tuple:
        objective: MarginalObjective = ctx.objective
        g_psum = None
        if objective.weight != 0:
            d = marginal_term_grad(ctx.marginal_parts, objective, ctx.batch_size)
            g_psum = d * (g if objective.weight == 1 else g * objective.weight)
        g_ce = None if ctx.ce_scale is None else g * ctx.ce_scale
        return stats_backward(ctx, g_ce, g_psum), None, None, None, None, None


def validate_prior(prior: Optional[Sequence[float]]) -> Optional[Tensor]:
    """Check the target proportions ``prior``; returns them as a float64 tensor (or None).

    Raises:
        ValueError: For proportions that are not finite, non-negative and summing to 1 (one
            foreground proportion in ``[0, 1]`` for a one-element binary prior).
    """
    if prior is None:
        return None
    t = torch.as_tensor(prior, dtype=torch.float64).flatten()
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"prior must be finite non-negative proportions, got {list(prior)}")
    if t.numel() > 1 and abs(float(t.sum()) - 1.0) > 1e-3:
        raise ValueError(f"prior must sum to 1 (got sum {float(t.sum()):.6g}): {t.tolist()}")
    if t.numel() == 1 and float(t) > 1:
        raise ValueError(f"a binary prior (foreground proportion) must be in [0, 1], got {t}")
    return t


def resolve_target(
    name: str, pooling: str, prior: Optional[Sequence[float]], target: Optional[str]
) -> str:
    """The ``pooling`` of the deprecated spelling ``target='image'|'batch'|'prior'``.

    Raises:
        ValueError: For an unknown ``target``, ``target='prior'`` without ``prior``, a prior
            with ``target='image'``/``'batch'``, or ``target`` together with ``pooling``.
    """
    if target is None:
        return check_choice("pooling", pooling, POOLINGS, name)
    check_choice("target", target, _TARGETS, name)
    if pooling != "image":
        raise ValueError(f"{name}: give pooling={pooling!r} or target={target!r}, not both")
    if target == "prior":
        if prior is None:
            raise ValueError(f"{name}: target='prior' needs prior=[t_1, ..., t_K]")
        deprecated(name, "target='prior'", "prior=[...] alone")
        return "image"
    if prior is not None:
        raise ValueError(
            f"{name}: prior is only used with target='prior', got target={target!r} (give "
            "prior=[...] without target)"
        )
    deprecated(name, f"target={target!r}", f"pooling={target!r}")
    return target


class StatsReporter:
    """The statistics API of the marginal losses, read by ``MarginalStatsHook``.

    Statistics cost an argmax pass; they are computed only after :meth:`enable_stats`, in
    training mode, and read through :attr:`last_stats`.
    """

    #: Whether the regularizer is one term of a combined loss (its value is not in the loss
    #: log on its own).
    combined_regularizer = False

    def _init_stats(self) -> None:
        self._stats_enabled = False
        self._last_stats: Optional[LossStats] = None

    def enable_stats(self, enabled: bool = True) -> None:
        """Compute :attr:`last_stats` on each training forward from now on (or stop, and forget
        the last ones)."""
        self._stats_enabled = bool(enabled)
        if not enabled:
            self._last_stats = None

    @property
    def stats_enabled(self) -> bool:
        """Whether training forwards compute :attr:`last_stats`."""
        return self._stats_enabled

    @property
    def last_stats(self) -> Optional[LossStats]:
        """The statistics of the last training forward (None before one, or when disabled)."""
        return self._last_stats


class MarginalMixin(StatsReporter):
    """Configuration and the penalty of the two marginal-loss modules (mixed into
    :class:`~mmseg_marginal.losses.SegLoss`)."""

    def _init_marginal(
        self,
        *,
        penalty: str,
        temperature: float,
        class_reduction: Optional[str],
        pooling: str,
        prior: Optional[Sequence[float]],
        target: Optional[str],
        compile: Union[bool, str],
        use_mask: bool,
        use_sigmoid: bool,
    ) -> None:
        name = type(self).__name__
        check_choice("penalty", penalty, PENALTIES, name)
        check_choice("class_reduction", class_reduction, CLASS_REDUCTIONS, name)
        if use_mask:
            raise ValueError(
                f"{name}: use_mask=True (mmseg's cross-entropy of instance masks) is not "
                "supported; the marginal losses take per-pixel labels (use_mask=False)"
            )
        self.penalty = penalty
        self.temperature = positive(temperature, "temperature", name)
        self.class_reduction = class_reduction
        self.pooling = resolve_target(name, pooling, prior, target)
        self._prior = validate_prior(prior)
        self.kernels = KernelRunner(compile)
        self.use_mask = False
        self.use_sigmoid = bool(use_sigmoid)
        self.loss_weight = non_negative(self.loss_weight, "loss_weight", name)
        self._init_stats()

    @property
    def compile(self) -> Union[bool, str]:
        """The ``compile`` mode of the kernels."""
        return self.kernels.mode

    @property
    def target(self) -> str:
        """``'prior'`` with a prior, else the ``pooling`` (the older name of the options)."""
        return "prior" if self._prior is not None else self.pooling

    @property
    def prior(self) -> Optional[Tensor]:
        """The target proportions (float64), or None."""
        return self._prior

    def _prior_for(self, num_classes: int, binary: bool) -> Tensor:
        t = self._prior
        if binary and t.numel() == 1:
            t = torch.cat([1 - t, t])
        if t.numel() != num_classes:
            what = "2 (background, foreground) or 1 (foreground)" if binary else str(num_classes)
            raise ValueError(
                f"prior has {self._prior.numel()} entries but the logits have "
                f"{1 if binary else num_classes} class channel(s); expected {what}"
            )
        return t

    def _stats_wanted(self) -> bool:
        return self._stats_enabled and self.training

    def _marginal_loss(
        self,
        inp: LossInputs,
        *,
        weight: float,
        with_ce: bool = False,
        class_weight: Optional[Tensor] = None,
        ce_divisor: Optional[float] = None,
    ) -> Tensor:
        """``ce_sum / ce_divisor + weight * R`` (no CE term without ``with_ce``) by
        :class:`FusedMarginalLoss`; records :attr:`last_stats` when they are wanted."""
        with_argmax = self._stats_wanted()
        options = _kernel_options(
            inp, self.temperature, self.kernels, with_ce=with_ce, with_argmax=with_argmax
        )
        prior = None
        if self._prior is not None:
            prior = self._prior_for(inp.num_classes, inp.binary)
        objective = MarginalObjective(
            penalty=self.penalty,
            class_reduction=default_class_reduction(self.penalty, self.class_reduction),
            pooling=self.pooling,
            prior=prior,
            weight=weight,
            ce_divisor=ce_divisor,
            binary=inp.binary,
        )
        z, label, cw, pw = _kernel_args(inp, class_weight, with_ce)
        with full_precision(z.device.type):
            loss, (r, counts, am_counts, n_valid, n_bad) = FusedMarginalLoss.apply(
                z, label, cw, pw, options, objective
            )
        _raise_on_bad_labels(inp, n_bad)
        if with_argmax:
            with torch.no_grad():
                y_img = normalize_proportions(counts.double(), n_valid)
                q_img = normalize_proportions(am_counts.double(), n_valid)
                self._last_stats = LossStats(
                    marginal=r.float(), prop_mae=(y_img - q_img).abs().mean().float()
                )
        return loss


class LabelMarginalLoss(MarginalMixin, SegLoss):
    """Label-marginal regularizer ``R(y_hat, p_hat)`` (Liu et al., Eq. 5).

    Use it next to any loss in a ``loss_decode`` list::

        loss_decode=[
            dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0),
            dict(type='LabelMarginalLoss', penalty='l1', temperature=10.0, loss_weight=1.0),
        ]

    The value is ``loss_weight * mean_b mean_k |y_bk - p_bk|`` (L1) or
    ``loss_weight * mean_b sum_k y_bk log(y_bk / p_bk)`` (KL), proportions as in the module
    docstring.

    Args:
        penalty (str): ``'l1'`` ("Ours(L1)", paper's best weight 1.0) or ``'kl'``
            ("Ours(DKL)", best weight 0.1). Default: ``'l1'``.
        temperature (float): tau > 0 of ``softmax(tau z)`` in ``p_hat``. Default: 10.0.
        class_reduction (str | None): ``'mean'`` or ``'sum'`` over classes; None = authors'
            default (``'mean'`` for L1, ``'sum'`` for KL).
        pooling (str): ``'image'``: one penalty per image, images averaged (the paper;
            default). ``'batch'``: counts and probabilities pooled over all valid pixels of the
            batch, one penalty per batch.
        prior (list[float] | None): Fixed target proportions replacing ``y_hat`` (K
            non-negative values summing to 1; in binary mode one foreground proportion or
            ``[background, foreground]``): the paper's general constraint ``p = t``.
        use_sigmoid (bool): Binary mode: ``cls_score`` has one channel, labels are in {0, 1},
            ``p_hat = mean sigmoid(tau z)``. Default: False (softmax over K >= 2 channels).
        loss_weight (float): lambda >= 0, the multiplier of the returned value. Default: 1.0.
        loss_name (str): Default: ``'loss_marginal'``.
        compile (bool | str): Run the ``torch.compile``d kernels (softmax mode): ``'auto'``
            (default) for float32 logits of at least 2**20 elements, ``True`` always,
            ``False`` never.
        target (str | None): Deprecated spelling: ``'image'``/``'batch'`` = ``pooling``,
            ``'prior'`` = give ``prior``.
        class_weight (None): Accepted for the keys of mmseg's ``CrossEntropyLoss`` dict; must
            be None.
        avg_non_ignore (bool): Must be True (proportions are over the valid pixels).
        use_mask (bool): Must be False.
        reduction (str): Must be ``'mean'``.

    Raises:
        ValueError: For any value that cannot be honoured, naming it.

    Notes:
        Images without valid pixels contribute 0 (they count in the mean over images, as in
        the authors' code). No per-pixel value: ``reduction_override='none'`` and
        ``avg_factor`` raise ``ValueError``; a per-pixel ``weight`` raises
        ``NotImplementedError``. Statistics: :class:`StatsReporter`.
    """

    def __init__(
        self,
        penalty: str = "l1",
        temperature: float = 10.0,
        class_reduction: Optional[str] = None,
        pooling: str = "image",
        prior: Optional[Sequence[float]] = None,
        use_sigmoid: bool = False,
        loss_weight: float = 1.0,
        loss_name: str = "loss_marginal",
        compile: Union[bool, str] = "auto",
        target: Optional[str] = None,
        class_weight: Optional[Union[Sequence[float], str]] = None,
        avg_non_ignore: bool = True,
        use_mask: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, loss_name=loss_name, reduction=reduction)
        name = type(self).__name__
        self._init_marginal(
            penalty=penalty,
            temperature=temperature,
            class_reduction=class_reduction,
            pooling=pooling,
            prior=prior,
            target=target,
            compile=compile,
            use_mask=use_mask,
            use_sigmoid=use_sigmoid,
        )
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
        self.avg_non_ignore = True
        self.class_weight = None

    def extra_repr(self) -> str:
        """Extra repr."""
        return (
            f"penalty={self.penalty!r}, temperature={self.temperature}, "
            f"class_reduction={self.class_reduction!r}, pooling={self.pooling!r}, "
            f"prior={None if self._prior is None else self._prior.tolist()}, "
            f"use_sigmoid={self.use_sigmoid}, loss_weight={self.loss_weight}"
        )

    def compute(self, inp: LossInputs, avg_factor: Optional[float]) -> Tensor:
        """``R`` before ``loss_weight``.

        Raises:
            NotImplementedError: For a per-pixel ``weight``, which has no meaning for a
                constraint on whole-image proportions.
        """
        if inp.weight is not None:
            raise NotImplementedError(
                f"{type(self).__name__} does not support a per-pixel `weight` (e.g. from a "
                "pixel sampler): the label-marginal constraint is on whole-image proportions"
            )
        return self._marginal_loss(inp, weight=1.0)
