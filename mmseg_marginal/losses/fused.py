"""Fused cross-entropy and tempered-softmax class sums with an analytic backward.

The label-marginal losses need, per image ``b`` and class ``k``, the sum over valid pixels of
the tempered softmax ``s_i = softmax(tau * z_i)`` and, for the combined loss, the (weighted)
cross-entropy sum. :class:`FusedMarginalStats` computes both in one forward, together with
the label bookkeeping (validity, label range check, CE weights and denominator, and the class
pixel counts and, on request, the per-class counts of the argmax prediction, both by
``bincount`` outside the kernels), and writes the gradient analytically in backward (Liu et
al., "The hidden label-marginal biases of segmentation losses", Eq. 5 and Appendix C):

.. math::

    \\frac{\\partial L}{\\partial z_{ik}} = g_{ce}\\, a_i (p_{ik} - [y_i = k])
        + \\tau\\, v_i\\, s_{ik} \\Big(G_{bk} - \\sum_j G_{bj} s_{ij}\\Big)

with ``p = softmax(z)``, ``a_i`` the per-pixel CE weight (validity x class weight x pixel
weight), ``v_i`` the validity of pixel ``i`` and ``G = dL/dpsum`` the incoming gradient of the
class sums. Ignored pixels get exactly zero gradient. With ``binary=True`` it is the same for one
foreground logit (``s_i = sigmoid(tau z_i)``, BCE):

.. math::

    \\frac{\\partial L}{\\partial z_i} = g_{ce}\\, a_i \\big(\\sigma(z_i)(c y_i + 1 - y_i)
        - c y_i\\big) + \\tau\\, v_i\\, s_i (1 - s_i) (G_{b,fg} - G_{b,bg}).

From :data:`~mmseg_marginal.losses.inputs.LARGE_NUMEL` logits elements on (and always on the
compiled path), only per-pixel statistics (``B x P``) are saved: the softmaxes are recomputed in
backward, so no logits-sized tensor is kept between forward and backward. Below it the eager
kernels keep the two unnormalized softmaxes instead (two tensors of less than 4 MiB each in
float32) with the reciprocals of their per-pixel sums. No one-hot label tensor is built. The
eager kernels take ``exp(x)`` as ``exp2(x log2(e))`` (:data:`LOG2E`).
Every ``exp`` argument is clamped below at :func:`exp_floor` (``1 + log`` of the smallest normal
float of the dtype): the result then differs from the unclamped one by less than ``e`` times
that float, and the CPU never takes the slow path of ``exp`` (``exp2``) near and below the
subnormal range. The tempered exponentials ``exp(tau (z_ik - max_k z_ik))`` are clamped below at
``exp(exp_floor / 2)`` (about ``2e-19`` in float32): their products with the gradients of the
class sums then stay normal floats too (a subnormal operand slows a CPU multiplication by
orders of magnitude), and a class sum over ``N`` pixels changes by less than ``N`` times that
floor, far below the ``1e-10`` smoothing of the proportions.

The multi-class kernels run in one of three formulations of the same mathematics: compiled
(:func:`_forward_kernel` and :func:`_backward_kernel` with ``fusible=True``: pointwise ops and
reductions only, ``torch.compile(dynamic=True)``, which fuses them into a few loops over the
logits), eager recomputing (the same functions with ``fusible=False``: one or two reused
logits-sized buffers updated in place) or eager keeping the softmaxes (:func:`_keep_forward`,
:func:`_keep_backward`); the eager ones take the class sums as batched row-vector products. A
:class:`KernelRunner` decides whether the compiled kernels run, owns them and counts the calls;
every loss module owns one (``loss.kernels``), so its lifetime is the module's. A compilation
failure switches that runner to eager with one logged warning. The environment variable
``MMSEG_MARGINAL_COMPILE=0`` disables compilation everywhere.
"""

import logging
import math
import os
import sys
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .inputs import LARGE_NUMEL, NO_IGNORE
from .labels import class_counts, count_labels, label_masks

#: Minimum number of float32 logits elements for which ``compile='auto'`` compiles.
AUTO_COMPILE_MIN_NUMEL = LARGE_NUMEL

_COMPILE_MODES = (True, False, "auto")

#: ``log2(e)``: the eager kernels take ``exp(x)`` as ``exp2(x * LOG2E)`` (on CPUs where torch's
#: ``exp`` goes through the vector math library, ``exp2`` is the faster of the two).
LOG2E = 1.0 / math.log(2.0)
#: ``log(2)``: converts the base-2 log-sum-exps of the eager kernels to natural units.
LN2 = math.log(2.0)

_LOG = logging.getLogger(__name__)


def exp_floor(dtype: torch.dtype) -> float:
    """``1 + log`` of the smallest normal number of ``dtype`` (about -86.3 for float32): the
    smallest ``exp`` argument of the kernels."""
    return 1.0 + math.log(torch.finfo(dtype).tiny)


def is_compiling() -> bool:
    """Whether dynamo is tracing the caller.

    ``torch.compiler.is_compiling`` (torch >= 2.3), else ``torch._dynamo.is_compiling``
    (torch 2.0-2.2); False on a torch without dynamo (< 2.0).
    """
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:  # torch 2.0-2.2
        check = getattr(getattr(torch, "_dynamo", None), "is_compiling", None)
    return bool(check()) if check is not None else False


def compile_available() -> bool:
    """Whether this torch can compile the kernels (``torch.compile`` exists and
    ``MMSEG_MARGINAL_COMPILE`` is not ``0``)."""
    return hasattr(torch, "compile") and os.environ.get("MMSEG_MARGINAL_COMPILE", "1") != "0"


def check_compile_mode(mode: Union[bool, str]) -> Union[bool, str]:
    """Return ``mode`` if it is a valid ``compile`` option (``True``, ``False``, ``'auto'``).

    Raises:
        ValueError: Naming the value otherwise.
    """
    if mode not in _COMPILE_MODES:
        raise ValueError(f"compile must be True, False or 'auto', got {mode!r}")
    return mode


def resolve_compile(mode: Union[bool, str], z: Tensor) -> bool:
    """Whether the compiled kernels should run for logits ``z`` under ``mode``.

    ``True``: whenever possible; ``False``: never; ``'auto'``: float32 logits of at least
    :data:`AUTO_COMPILE_MIN_NUMEL` elements (where compiling pays off). Never while dynamo is
    tracing the caller or where :func:`compile_available` is False.
    """
    if mode is False:
        return False
    if mode == "auto" and not (z.dtype == torch.float32 and z.numel() >= AUTO_COMPILE_MIN_NUMEL):
        return False
    return compile_available() and not is_compiling()


class KernelStats(NamedTuple):
    """Calls of the kernels of one :class:`KernelRunner` (one per forward, one per backward)."""

    compiled_calls: int
    eager_calls: int
    #: A compilation (or a compiled call) failed; the runner runs eager kernels since.
    broken: bool


class KernelRunner:
    """Runs the multi-class kernels compiled or eager; owns the compiled kernels and counts.

    Args:
        compile (bool | str): ``True``, ``False`` or ``'auto'`` (see ``resolve_compile``).

    Raises:
        ValueError: For another ``compile`` value.
    """

    def __init__(self, compile: Union[bool, str] = "auto") -> None:
        self.mode = check_compile_mode(compile)
        self._compiled: Dict[str, Callable] = {}
        self.broken = False
        self.compiled_calls = 0
        self.eager_calls = 0

    def __repr__(self) -> str:
        return f"KernelRunner(compile={self.mode!r}, {self.stats()})"

    def stats(self) -> KernelStats:
        """The call counts and failure flag so far."""
        return KernelStats(self.compiled_calls, self.eager_calls, self.broken)

    def use_compile(self, z: Tensor) -> bool:
        """Whether the next kernels for logits ``z`` run compiled."""
        return not self.broken and resolve_compile(self.mode, z)

    def run(self, kernel: Callable, use_compile: bool, **kwargs: Any) -> Any:
        """``kernel(**kwargs)``, compiled (fusible formulation) or eager; counts the call."""
        if use_compile and not self.broken:
            # detach() drops the view relation to the 4-D/5-D logits, so that dynamo guards
            # only on the flattened (B, K, P) shape
            cargs = {n: a.detach() if isinstance(a, Tensor) else a for n, a in kwargs.items()}
            try:
                fn = self._compiled.get(kernel.__name__)
                if fn is None:
                    fn = self._compiled[kernel.__name__] = torch.compile(kernel, dynamic=True)
                out = fn(**cargs, fusible=True)
            except Exception as exc:  # noqa: BLE001 - any compiler failure means "use eager"
                self.broken = True
                _warn(
                    "mmseg_marginal: torch.compile of the fused marginal-loss kernels failed "
                    f"({type(exc).__name__}: {exc}); falling back to eager kernels for this "
                    "loss module."
                )
            else:
                self.compiled_calls += 1
                return out
        return self.run_eager(kernel, fusible=False, **kwargs)

    def run_eager(self, kernel: Callable, *args: Any, **kwargs: Any) -> Any:
        """``kernel(*args, **kwargs)`` without compilation (the kernels that only have an eager
        form, and the eager formulation of the others); counts the call."""
        self.eager_calls += 1
        return kernel(*args, **kwargs)


def _warn(message: str) -> None:
    """Log a warning: to mmengine's current logger when mmengine is loaded (the training log),
    else to this module's standard logger."""
    mm_logging = sys.modules.get("mmengine.logging")
    if mm_logging is not None:
        mm_logging.print_log(message, logger="current", level=logging.WARNING)
    else:
        _LOG.warning(message)


# --------------------------------------------------------------------------- kernels
# Plain-tensor functions (no autograd inside), run eagerly (fusible=False) or as torch.compile
# sources (fusible=True); they also do the per-pixel label bookkeeping, so that the compiled
# forward is one fused pass.


def _exp_tau(zs: Tensor, tau: float, lo: float) -> Tensor:
    """``exp(tau * zs)`` for ``zs <= 0`` (compiled formulation), clamped below at
    ``exp(lo / 2)``. For an integer ``tau`` in [1, 32] it is ``exp(zs) ** tau``
    (multiplications, which inductor fuses with the ``exp`` of the plain softmax into one
    ``exp`` per element), its base clamped at ``exp(lo / (2 tau))``."""
    if _integer_tau(tau):
        base = torch.exp(zs.clamp_min(lo)).clamp_min(math.exp(lo / 2 / tau))
        return base ** int(tau)
    return torch.exp((zs * tau).clamp_min(lo / 2))


def _int_power(x: Tensor, n: int) -> Tensor:
    """``x ** n`` for an integer ``n >= 1`` by left-to-right binary powering (a new tensor,
    ``x`` unchanged; one multiplication pass per bit instead of the library's general power)."""
    result = x.clone() if n == 1 else None
    for bit in bin(n)[3:]:
        result = torch.mul(x, x) if result is None else result.mul_(result)
        if bit == "1":
            result.mul_(x)
    return result


def _integer_tau(tau: float) -> bool:
    """Whether ``exp(tau x)`` is computed as ``exp(x) ** tau`` (an integer ``tau`` in
    [1, 32])."""
    return float(tau).is_integer() and 1 <= tau <= 32


def _class_sums(u: Tensor, w: Tensor) -> Tensor:
    """``sum_p u[b, k, p] w[b, p]`` ``(B, K)``, as the batched product ``w^T u^T`` (which the
    CPU runs several times faster than ``u w`` with a single column)."""
    return torch.bmm(w.unsqueeze(1), u.transpose(1, 2)).squeeze(1)


def _pixel_dots(u: Tensor, g: Tensor) -> Tensor:
    """``sum_k g[b, k] u[b, k, p]`` ``(B, 1, P)``."""
    return torch.bmm(g.unsqueeze(1), u)


def _first_argmax(z: Tensor, m: Tensor) -> Tensor:
    """First class index of the maximum ``m`` of each pixel of ``z`` ``(B, K, P)``, as a
    floating-point min-reduction ``(B, P)`` (which vectorizes over the class axis)."""
    k = z.shape[1]
    classes = torch.arange(k, device=z.device, dtype=z.dtype).view(1, k, 1)
    return torch.where(z == m, classes, float(k)).amin(1).long()


def _forward_kernel(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    *,
    ignore_index: int,
    tau: float,
    with_ce: bool,
    with_argmax: bool,
    fusible: bool,
) -> Tuple[Tensor, ...]:
    """Forward statistics of the recomputing formulations (compiled, or eager on large
    inputs): ``(ce, denom, psum, valid, clean labels, argmax)`` and the tuple saved for
    :func:`_backward_kernel` (``vf``, clean labels, CE weights ``a``, ``max``, and the
    log-sum-exps of ``z`` and ``tau z``); see :class:`FusedMarginalStats`."""
    k = z.shape[1]
    lo = exp_floor(z.dtype)
    valid, lab_c = label_masks(label, k, ignore_index)
    vf = valid.to(z.dtype)
    m = z.amax(1, keepdim=True)
    if fusible:
        zs = z - m
        lset = torch.log(_exp_tau(zs, tau, lo).sum(1))
        # recomputed (not kept from the line above), so that inductor keeps no logits-sized
        # buffer
        psum = (_exp_tau(zs, tau, lo) * torch.exp(-lset).unsqueeze(1) * vf.unsqueeze(1)).sum(2)
        lse1 = torch.log(torch.exp(zs.clamp_min(lo)).sum(1)) if with_ce else None
    else:
        # one logits-sized buffer: exp(tau (z - max)), then exp(z - max)
        buf = torch.sub(z, m).mul_(tau * LOG2E).clamp_min_(lo * LOG2E / 2).exp2_()
        set_ = buf.sum(1)
        psum = _class_sums(buf, vf / set_)
        lset = torch.log(set_)
        lse1 = None
        if with_ce:
            torch.sub(z, m, out=buf).mul_(LOG2E).clamp_min_(lo * LOG2E).exp2_()
            lse1 = buf.sum(1).log_()
        del buf
    argmax = _first_argmax(z, m) if with_argmax else lab_c
    m = m.squeeze(1)
    if with_ce:
        zy = torch.gather(z, 1, lab_c.unsqueeze(1)).squeeze(1) - m
        ce, denom, a = _ce_sum(zy, lse1, lab_c, vf, cw, pw)
    else:
        ce, denom, a = _no_ce(vf)
    if lse1 is None:
        lse1 = vf
    return ce, denom, psum, valid, lab_c, argmax, (vf, lab_c, a, m, lse1, lset)


def _ce_sum(
    zy: Tensor,
    lse: Tensor,
    lab_c: Tensor,
    vf: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    scale: float = 1.0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """The weighted CE sum ``scale * sum_i a_i (lse_i - zy_i)``, its denominator
    ``sum_i v_i c_{y_i}`` and the per-pixel CE weights ``a`` ``(B, P)``, from the log-sum-exps
    ``lse`` of the shifted logits and the shifted logit ``zy`` of the true class ``(B, P)``
    (natural units with ``scale=1``; base-2 units with ``scale=log(2)``)."""
    a = vf if cw is None else vf * cw[lab_c]
    denom = a.sum()
    if pw is not None:
        a = a * pw
    ce = ((lse - zy) * a).sum()
    return (ce if scale == 1.0 else ce * scale), denom, a


def _no_ce(vf: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Zero CE sum and denominator without the CE term (``vf`` stands in for ``a``)."""
    zero = vf.new_zeros(())
    return zero, zero, vf


def _backward_kernel(
    z: Tensor,
    vf: Tensor,
    lab_c: Tensor,
    a: Tensor,
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    g_ce: Tensor,
    g: Tensor,
    *,
    tau: float,
    with_ce: bool,
    fusible: bool,
) -> Tensor:
    """Analytic gradient of the module docstring, recomputing both softmaxes from the
    per-pixel statistics of :func:`_forward_kernel`; ``g_ce`` is the 0-dim gradient of the CE
    sum, ``g`` the ``(B, K)`` one of ``psum``."""
    lo = exp_floor(z.dtype)
    m, lset = m.unsqueeze(1), lset.unsqueeze(1)
    vt = (vf * tau).unsqueeze(1)
    if fusible:
        zs = z - m
        s = _exp_tau(zs, tau, lo) * torch.exp(-lset)
        gk = g.unsqueeze(2)
        grad = vt * s * (gk - (s * gk).sum(1, keepdim=True))
        if with_ce:
            classes = torch.arange(z.shape[1], device=z.device).view(1, -1, 1)
            onehot = (classes == lab_c.unsqueeze(1)).to(z.dtype)
            p = torch.exp(zs.clamp_min(lo)) * torch.exp(-lse1.unsqueeze(1))
            grad = grad + (a * g_ce).unsqueeze(1) * (p - onehot)
        return grad
    # two logits-sized buffers: the gradient and one temporary
    s = torch.sub(z, m).mul_(tau * LOG2E).clamp_min_(lo * LOG2E / 2)
    s = s.sub_(lset * LOG2E).exp2_()  # softmax(tau z)
    t = _pixel_dots(s, g)  # (B, 1, P) = <G_b, s_i>
    grad = torch.mul(s, g.unsqueeze(2))
    grad.sub_(s.mul_(t)).mul_(vt)
    if with_ce:
        ag = (a * g_ce).unsqueeze(1)
        # softmax(z) = exp(z - (max + lse1))
        p = torch.sub(z, m + lse1.unsqueeze(1), out=s).mul_(LOG2E).clamp_min_(lo * LOG2E).exp2_()
        grad.addcmul_(p, ag)
        grad.scatter_add_(1, lab_c.unsqueeze(1), -ag)
    return grad


def _keep_forward(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    *,
    ignore_index: int,
    tau: float,
    with_ce: bool,
    with_argmax: bool,
) -> Tuple[Tensor, ...]:
    """Forward statistics of the eager formulation that keeps the softmaxes (small inputs):
    as :func:`_forward_kernel`, the saved tuple for :func:`_keep_backward` being ``vf``, clean
    labels, ``a``, ``w = vf / sum_k exp(tau (z - max))``, ``1 / sum_k exp(tau (z - max))``,
    ``1 / sum_k exp(z - max)`` and the unnormalized ``exp(tau (z - max))`` and
    ``exp(z - max)``."""
    k = z.shape[1]
    lo2 = exp_floor(z.dtype) * LOG2E
    valid, lab_c = label_masks(label, k, ignore_index)
    vf = valid.to(z.dtype)
    m = z.amax(1, keepdim=True)
    # log2(e) (z - max) in one pass (log2(e) z - log2(e) max)
    zs2 = torch.add(m * -LOG2E, z, alpha=LOG2E)
    zy2 = torch.gather(zs2, 1, lab_c.unsqueeze(1)).squeeze(1) if with_ce else None
    e1 = None
    if _integer_tau(tau):
        # exp(tau zs) = exp(zs) ** tau by binary powering: one exponential for both softmaxes
        e1 = zs2.clamp_min_(lo2).exp2_()
        s_keep = _int_power(e1.clamp_min(2.0 ** (lo2 / 2 / tau)), int(tau))
    else:
        s_keep = torch.mul(zs2, tau).clamp_min_(lo2 / 2).exp2_()
        if with_ce:
            e1 = zs2.clamp_min_(lo2).exp2_()
    rs = s_keep.sum(1).reciprocal_()
    w = vf * rs
    psum = _class_sums(s_keep, w)
    if with_ce:
        rse1 = e1.sum(1)
        ce, denom, a = _ce_sum(zy2, torch.log2(rse1), lab_c, vf, cw, pw, scale=LN2)
        rse1 = rse1.reciprocal_()
    else:
        ce, denom, a = _no_ce(vf)
        e1 = rse1 = vf
    argmax = _first_argmax(z, m) if with_argmax else lab_c
    return ce, denom, psum, valid, lab_c, argmax, (vf, lab_c, a, w, rs, rse1, s_keep, e1)


def _keep_backward(
    vf: Tensor,
    lab_c: Tensor,
    a: Tensor,
    w: Tensor,
    rs: Tensor,
    rse1: Tensor,
    s_keep: Tensor,
    e1: Tensor,
    g_ce: Tensor,
    g: Tensor,
    *,
    tau: float,
    with_ce: bool,
) -> Tensor:
    """The gradient of :func:`_backward_kernel` from the softmaxes kept by
    :func:`_keep_forward`: with ``s = rs s_keep`` and ``p = rse1 e1``,
    ``tau v s (G - <G, s>) = tau w (s_keep G - s_keep rs <G, s_keep>)``."""
    tw = (w * tau).unsqueeze(1)
    # tau w (G - rs <G, s_keep>) as one broadcast product, then times s_keep
    grad = torch.addcmul(
        _pixel_dots(s_keep, g).mul_(tw * rs.unsqueeze(1)).neg_(), g.unsqueeze(2), tw
    )
    grad.mul_(s_keep)
    if with_ce:
        ag = (a * g_ce).unsqueeze(1)
        grad.addcmul_(e1, ag * rse1.unsqueeze(1))
        grad.scatter_add_(1, lab_c.unsqueeze(1), -ag)
    return grad


# --------------------------------------------------------------------------- autograd


class KernelOptions(NamedTuple):
    """The non-tensor inputs of the fused functions (``autograd.Function.apply`` takes
    positional arguments only)."""

    #: Ignored label (:data:`~mmseg_marginal.losses.inputs.NO_IGNORE` for none).
    ignore_index: int
    #: Temperature of the softmax (sigmoid) whose class sums are returned.
    tau: float
    #: Compute the CE sum (otherwise 0).
    with_ce: bool
    #: Count the argmax prediction per class.
    with_argmax: bool
    #: Run the ``torch.compile`` kernels (multi-class only).
    use_compile: bool
    #: The runner that runs and counts the kernels.
    runner: KernelRunner

    @property
    def ignored(self) -> Optional[int]:
        """The ignored label, None for none."""
        return None if self.ignore_index == NO_IGNORE else self.ignore_index


def _keeps_softmax(z: Tensor, options: KernelOptions) -> bool:
    """Whether the eager kernels keep the two softmaxes between forward and backward: below
    :data:`~mmseg_marginal.losses.inputs.LARGE_NUMEL` logits elements (at most two small
    logits-sized tensors), where recomputing them would cost more than the whole CE."""
    return not options.use_compile and z.numel() < LARGE_NUMEL


def stats_forward(
    ctx: Any,
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    options: KernelOptions,
    binary: bool,
) -> Tuple[Tensor, ...]:
    """The statistics of :class:`FusedMarginalStats` (``binary=False``: logits ``(B, K, P)``;
    ``binary=True``: foreground logits ``(B, P)``); saves what
    :func:`stats_backward` needs on ``ctx``. Shared by the autograd functions that return the
    statistics and the one that returns a whole marginal loss."""
    ctx.options = options
    ctx.binary = binary
    if binary:
        return options.runner.run_eager(_binary_forward, ctx, z, label, cw, pw, options)
    ctx.keep = _keeps_softmax(z, options)
    kwargs = dict(
        ignore_index=options.ignore_index,
        tau=options.tau,
        with_ce=options.with_ce,
        with_argmax=options.with_argmax,
    )
    if ctx.keep:
        out = options.runner.run_eager(_keep_forward, z, label, cw, pw, **kwargs)
    else:
        out = options.runner.run(
            _forward_kernel, options.use_compile, z=z, label=label, cw=cw, pw=pw, **kwargs
        )
    ce, denom, psum, valid, lab_c, argmax, saved = out
    k = z.shape[1]
    # the class counts come from bincount outside the kernels (a comparison with every class
    # index would be a K x P pass of its own)
    counts, n_valid, n_bad = count_labels(label, k, options.ignored)
    if options.with_argmax:
        am_counts = class_counts(argmax, valid, k)
    else:
        am_counts = counts.new_zeros(())
    ctx.save_for_backward(z, *saved)
    return ce, denom, psum, counts, am_counts, n_valid, n_bad


def stats_backward(ctx: Any, g_ce: Optional[Tensor], g_psum: Optional[Tensor]) -> Tensor:
    """Gradient of the logits from those of the CE sum (0-dim) and of the class sums
    ``(B, K)`` (either may be None: no gradient), after :func:`stats_forward`."""
    if ctx.binary:
        return ctx.options.runner.run_eager(_binary_backward, ctx, g_ce, g_psum)
    z, *saved = ctx.saved_tensors
    options: KernelOptions = ctx.options
    g_ce = z.new_zeros(()) if g_ce is None else g_ce.to(z.dtype)
    g = z.new_zeros(z.shape[:2]) if g_psum is None else g_psum.to(z.dtype).contiguous()
    if ctx.keep:
        return options.runner.run_eager(
            _keep_backward, *saved, g_ce, g, tau=options.tau, with_ce=options.with_ce
        )
    vf, lab_c, a, m, lse1, lset = saved
    return options.runner.run(
        _backward_kernel,
        options.use_compile,
        z=z,
        vf=vf,
        lab_c=lab_c,
        a=a,
        m=m,
        lse1=lse1,
        lset=lset,
        g_ce=g_ce,
        g=g,
        tau=options.tau,
        with_ce=options.with_ce,
    )


def _binary_forward(
    ctx: Any,
    z: Tensor,
    label: Tensor,
    pos_weight: Optional[Tensor],
    pw: Optional[Tensor],
    options: KernelOptions,
) -> Tuple[Tensor, ...]:
    valid, lab_c = label_masks(label, 2, options.ignored)
    vf = valid.to(z.dtype)
    counts, n_valid, n_bad = count_labels(label, 2, options.ignored)
    t = z * options.tau
    s1 = torch.sigmoid(t)  # foreground
    s0 = torch.sigmoid(t.neg_())  # background
    # (B, 2) = [background, foreground] sums over the valid pixels, by one batched product
    psum = _class_sums(torch.stack([s0, s1], 1), vf)
    if options.with_ce:
        y = lab_c.to(z.dtype)
        a = vf if pw is None else vf * pw
        ce = F.binary_cross_entropy_with_logits(z, y, a, reduction="sum", pos_weight=pos_weight)
        denom = n_valid.sum().to(z.dtype)
    else:
        y = a = vf
        ce = denom = z.new_zeros(())
    if options.with_argmax:
        am_fg = ((z > 0) & valid).sum(1)
        am_counts = torch.stack([n_valid - am_fg, am_fg], 1)
    else:
        am_counts = counts.new_zeros(())
    # d sigmoid(tau z) / dz = tau s1 s0, kept with the validity: (s1 s0) v
    ctx.save_for_backward(z, y, a, pos_weight, s1.mul_(s0).mul_(vf))
    return ce, denom, psum, counts, am_counts, n_valid, n_bad


def _binary_backward(ctx: Any, g_ce: Optional[Tensor], g_psum: Optional[Tensor]) -> Tensor:
    z, y, a, pos_weight, dsv = ctx.saved_tensors
    options: KernelOptions = ctx.options
    grad = None
    if g_psum is not None:
        # the background sum has the opposite sign of the foreground one
        g = (g_psum[:, 1:] - g_psum[:, :1]).to(z.dtype)
        grad = dsv * (g * options.tau)
    if options.with_ce and g_ce is not None:
        sig = torch.sigmoid(z)
        if pos_weight is None:
            d = sig.sub_(y)
        else:
            cy = pos_weight * y
            d = sig.mul_(cy + 1 - y).sub_(cy)
        ag = a * g_ce.to(z.dtype)
        if grad is None:
            grad = d.mul_(ag)
        else:
            grad.addcmul_(d, ag)
    if grad is None:
        grad = torch.zeros_like(z)
    return grad


class FusedMarginalStats(torch.autograd.Function):
    """One pass over the logits for the CE sum, tempered-softmax class sums and label counts.

    Inputs: logits ``z`` ``(B, K, P)`` (float32/float64, contiguous), raw int64 labels
    ``(B, P)``, optional CE class weights ``(K,)`` and per-pixel CE weights ``(B, P)``, a
    :class:`KernelOptions` and ``binary``. In binary mode (sigmoid, ``binary=True``) ``z`` is
    the foreground logits ``(B, P)``, the labels are in {0, 1} (or ignored) and the class
    weight is one element (mmseg's ``pos_weight``).

    Returns:
        tuple: ``ce_sum`` (0-dim, ``sum_i a_i (-log softmax(z_i)[y_i])``; binary:
        ``sum_i a_i (c y_i softplus(-z_i) + (1 - y_i) softplus(z_i))``), ``ce_denom`` (0-dim,
        ``sum_i valid_i c_{y_i}``; binary: the number of valid pixels), ``psum`` ``(B, K)``
        (``sum_{i valid} softmax(tau z_i)``; binary: ``[sum sigmoid(-tau z), sum sigmoid(tau
        z)]``), ``counts`` ``(B, K)`` int64, ``am_counts`` ``(B, K)`` int64 (0-dim without
        ``with_argmax``), ``n_valid`` ``(B,)`` int64, ``n_bad`` (0-dim int64, non-ignored
        labels outside ``[0, K)``, treated as ignored). ``ce_sum`` and ``psum`` are
        differentiable.
    """

    @staticmethod
    def forward(
        ctx: Any,
        z: Tensor,
        label: Tensor,
        cw: Optional[Tensor],
        pw: Optional[Tensor],
        options: KernelOptions,
        binary: bool,
    ) -> Tuple[Tensor, ...]:
        out = stats_forward(ctx, z, label, cw, pw, options, binary=binary)
        ctx.mark_non_differentiable(*out[1:2], *out[3:])
        return out

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, g_ce: Optional[Tensor], _g1: Any, g_psum: Optional[Tensor], *_: Any
    ) -> tuple:
        return stats_backward(ctx, g_ce, g_psum), None, None, None, None, None
