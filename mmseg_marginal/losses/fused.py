"""Fused cross-entropy and tempered-softmax class sums with an analytic backward.

The label-marginal losses need, per image ``b`` and class ``k``, the sum over valid pixels of
the tempered softmax ``s_i = softmax(tau * z_i)`` and, for the combined loss, the (weighted)
cross-entropy sum. :class:`FusedMarginalStats` computes both in one forward, together with
the label bookkeeping (validity, label range check, class pixel counts, CE weights and
denominator, per-class counts of the argmax prediction for ``last_stats``), and writes the
gradient analytically in backward (Liu et al., "The hidden label-marginal biases of
segmentation losses", Eq. 5 and Appendix C):

.. math::

    \\frac{\\partial L}{\\partial z_{ik}} = g_{ce}\\, a_i (p_{ik} - [y_i = k])
        + \\tau\\, v_i\\, s_{ik} \\Big(G_{bk} - \\sum_j G_{bj} s_{ij}\\Big)

with ``p = softmax(z)``, ``a_i`` the per-pixel CE weight (validity x class weight x pixel
weight), ``v_i`` the validity of pixel ``i`` and ``G = dL/dpsum`` the incoming gradient of the
class sums. Ignored pixels get exactly zero gradient.

Only per-pixel statistics (``max``, the two log-sum-exps; ``B x P`` floats) are saved; softmax
and tempered softmax are recomputed in backward, so no logits-sized tensor is kept between
forward and backward, and no one-hot label tensor is built.

The kernels run in one of two formulations of the same mathematics, chosen by where they run
(argument ``fusible`` of the kernel functions):

* compiled (``fusible=True``): pointwise ops and reductions only, compiled with
  ``torch.compile(dynamic=True)``, which fuses them into a few loops over the logits (shapes
  symbolic, so image sizes do not trigger recompilation; inductor adds at most one size-class
  switch, at 4096 pixels per image, plus one graph per ``(with_ce, with_argmax, tau, dtype)``
  combination actually used);
* eager (``fusible=False``): one or two reused logits-sized buffers updated in place, ``bmm``
  for the class sums and ``bincount`` for the counts.

Each formulation is the faster and leaner one where it runs. ``python
tools/benchmark_losses.py --height 128 --width 256 --repeats 5 --device cpu`` (logits
2 x 19 x 128 x 256, float32; a 2-core CPU) times forward + backward against mmseg's
``CrossEntropyLoss(avg_non_ignore=True)``: CE + L1 compiled 1.63x, eager 3.50x on the idle
machine (6 and 12 MiB peak extra memory); 1.23-1.26x and 6.8-7.2x while another job kept one
core busy; with ``--threads 1`` under that load 1.66-2.02x and 3.06-3.76x. Substituting one
formulation for the other at that size, the fusible one run eagerly took 7.1x and 35 MiB
(against 3.6x and 11 MiB for the eager one in the same run; 2-2.6x its time from 64 x 64 to
256 x 512 pixels), and the eager one compiled 2.2x and 11 MiB (against 1.95x and 6 MiB).

Compilation is used for large float32 inputs (``compile='auto'``); any failure falls back to
eager with one logged warning. Set the environment variable ``MMSEG_MARGINAL_COMPILE=0`` to
disable it globally. Which path actually ran is observable through :func:`compile_stats`
(counts of kernel calls run compiled and eager, and whether compilation failed in this
process); :func:`reset_compile_state` starts these counts, the compiled-kernel cache and the
failure flag afresh.
"""

import logging
import os
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor
from torch.autograd.function import once_differentiable

from .labels import class_counts, label_masks

#: Minimum number of logits elements for which ``compile='auto'`` compiles the kernels.
AUTO_COMPILE_MIN_NUMEL = 1 << 20

#: Stand-in for ``ignore_index=None`` (no pixel is ignored): no label can take this value
#: without also being outside ``[0, K)``.
NO_IGNORE = -(2**62)

_COMPILE_MODES = (True, False, "auto")


class _CompileState:
    """Process state of the compiled kernels: their cache, failure flag and call counts."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.cache: Dict[str, Callable] = {}
        self.broken = False  # a compilation or a compiled call failed: eager from then on
        self.compiled_calls = 0
        self.eager_calls = 0


_STATE = _CompileState()


def compile_stats() -> Dict[str, Union[bool, int]]:
    """Which kernels ran since the process started (or since :func:`reset_compile_state`).

    Returns:
        dict: ``compiled_calls`` and ``eager_calls`` (kernel calls, one per forward and one per
        backward of :class:`FusedMarginalStats`) and ``broken`` (compilation failed and the
        kernels fell back to eager).
    """
    st = _STATE
    return dict(compiled_calls=st.compiled_calls, eager_calls=st.eager_calls, broken=st.broken)


def reset_compile_state() -> None:
    """Start afresh: forget the compiled kernels (the next compiled call compiles again), an
    earlier compilation failure, and the counts of :func:`compile_stats`."""
    _STATE.reset()


def compile_available() -> bool:
    """Whether the compiled kernels may be used (torch has ``torch.compile``, not disabled, no
    earlier failure)."""
    return (
        hasattr(torch, "compile")  # torch >= 2.0
        and not _STATE.broken
        and os.environ.get("MMSEG_MARGINAL_COMPILE", "1") != "0"
    )


def is_compiling() -> bool:
    """Whether dynamo is tracing the caller.

    ``torch.compiler.is_compiling`` (torch >= 2.3), else ``torch._dynamo.is_compiling``
    (torch 2.0-2.2); False on a torch without dynamo (< 2.0).
    """
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:  # torch 2.0-2.2
        check = getattr(getattr(torch, "_dynamo", None), "is_compiling", None)
    return bool(check()) if check is not None else False


def check_compile_mode(mode: Union[bool, str]) -> Union[bool, str]:
    """Return ``mode`` if it is a valid ``compile`` option (``True``, ``False``, ``'auto'``).

    Raises:
        ValueError: Naming the value otherwise.
    """
    if mode not in _COMPILE_MODES:
        raise ValueError(f"compile must be True, False or 'auto', got {mode!r}")
    return mode


def resolve_compile(mode: Union[bool, str], z: Tensor) -> bool:
    """Decide whether to run the compiled kernels for logits ``z``.

    Args:
        mode (bool | str): ``True`` (compile whenever possible), ``False`` (always eager) or
            ``'auto'`` (compile float32 inputs of at least :data:`AUTO_COMPILE_MIN_NUMEL`
            elements, where compilation pays off).
        z (Tensor): Logits.
    """
    check_compile_mode(mode)
    if mode is False or not compile_available():
        return False
    if is_compiling():
        return False
    if mode == "auto":
        return z.dtype == torch.float32 and z.numel() >= AUTO_COMPILE_MIN_NUMEL
    return True


# --------------------------------------------------------------------------- kernels
# Plain-tensor functions (no autograd inside), run eagerly (fusible=False) or as torch.compile
# sources (fusible=True). Besides the heavy (B, K, P) work they also do all per-pixel label
# bookkeeping (validity, label range check, class counts, CE weights), so that the compiled
# forward is one fused pass and no (B, P)-sized op runs outside the kernels.


def _ce_weights(
    valid: Tensor, lab_c: Tensor, cw: Optional[Tensor], pw: Optional[Tensor], dtype: torch.dtype
) -> Tuple[Tensor, Tensor]:
    """Per-pixel CE weight and the CE denominator (mmseg ``avg_non_ignore`` convention)."""
    w = valid.to(dtype)
    if cw is not None:
        w = w * cw[lab_c]
    denom = w.sum()
    if pw is not None:
        w = w * pw
    return w, denom


def _first_argmax(z: Tensor, m: Tensor, fusible: bool) -> Tensor:
    """Class index of the maximum ``m`` of each pixel of ``z`` ``(B, K, P)``, ``(B, 1, P)``."""
    k = z.shape[1]
    if fusible or z.numel() < (1 << 20):
        # first index of the maximum as a min-reduction, which vectorizes (and avoids the large
        # fixed cost of Tensor.max(dim) on small CPU inputs)
        classes = torch.arange(k, device=z.device).view(1, k, 1)
        return torch.where(z == m, classes, k).amin(1, keepdim=True)
    return z.max(1, keepdim=True)[1]


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
    """Forward statistics; see :class:`FusedMarginalStats` (the last three outputs are the
    saved ``max``, ``logsumexp(z - max)`` and ``logsumexp(tau (z - max))`` per pixel)."""
    k = z.shape[1]
    valid, lab_c, n_bad = label_masks(label, k, ignore_index)
    vf = valid.to(z.dtype)
    m = z.amax(1, keepdim=True)
    am = _first_argmax(z, m, fusible) if with_argmax else None
    if fusible:
        zs = z - m
        lset = torch.log(torch.exp(zs * tau).sum(1, keepdim=True))
        # written as a second exp (not exp / sum) so that inductor recomputes it instead of
        # materializing a logits-sized buffer
        psum = (torch.exp(zs * tau - lset) * vf.unsqueeze(1)).sum(2)
        lse1 = torch.log(torch.exp(zs).sum(1)) if with_ce else None
    else:
        buf = torch.sub(z, m).mul_(tau).exp_()  # exp(tau (z - max)), reused below
        set_ = buf.sum(1, keepdim=True)
        psum = torch.bmm(buf, (vf.unsqueeze(1) / set_).transpose(1, 2)).squeeze(2)
        lset = torch.log(set_)
        lse1 = torch.log(torch.sub(z, m, out=buf).exp_().sum(1)) if with_ce else None
        del buf
    lset = lset.squeeze(1)
    counts = class_counts(lab_c, valid, k, fusible=fusible)
    n_valid = valid.sum(1)
    if with_ce:
        w, denom = _ce_weights(valid, lab_c, cw, pw, z.dtype)
        zy = torch.gather(z, 1, lab_c.unsqueeze(1)).squeeze(1) - m.squeeze(1)
        ce = ((lse1 - zy) * w).sum()
    else:
        lse1 = lset.new_zeros(())
        ce = denom = lset.new_zeros(())
    if with_argmax:
        am_counts = class_counts(am.squeeze(1), valid, k, fusible=fusible)
    else:
        am_counts = counts.new_zeros(())
    return ce, denom, psum, counts, am_counts, n_valid, n_bad, m.squeeze(1), lse1, lset


def _backward_kernel(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    g_ce: Tensor,
    g: Tensor,
    *,
    ignore_index: int,
    tau: float,
    with_ce: bool,
    fusible: bool,
) -> Tensor:
    """Analytic gradient of the module docstring from the statistics ``m``, ``lse1``, ``lset``
    ``(B, P)`` saved by the forward; ``g_ce`` is the 0-dim gradient of the CE sum, ``g`` the
    ``(B, K)`` one of ``psum``."""
    valid, lab_c, _ = label_masks(label, z.shape[1], ignore_index)
    m, lset = m.unsqueeze(1), lset.unsqueeze(1)
    vt = (valid.to(z.dtype) * tau).unsqueeze(1)
    a = (_ce_weights(valid, lab_c, cw, pw, z.dtype)[0] * g_ce).unsqueeze(1) if with_ce else None
    if fusible:
        zs = z - m
        e1 = torch.exp(zs)
        if float(tau).is_integer() and 1 <= tau <= 32:
            # exp(tau zs) = exp(zs) ** tau: one exp per element for both softmaxes
            s = e1 ** int(tau) * torch.exp(-lset)
        else:
            s = torch.exp(zs * tau - lset)
        gk = g.unsqueeze(2)
        grad = vt * s * (gk - (s * gk).sum(1, keepdim=True))
        if with_ce:
            classes = torch.arange(z.shape[1], device=z.device).view(1, -1, 1)
            onehot = (classes == lab_c.unsqueeze(1)).to(z.dtype)
            grad = grad + a * (e1 * torch.exp(-lse1).unsqueeze(1) - onehot)
        return grad
    # two logits-sized buffers: the gradient and one temporary
    s = torch.sub(z, m).mul_(tau).sub_(lset).exp_()  # softmax(tau z)
    t = torch.bmm(g.unsqueeze(1), s)  # (B, 1, P) = <G_b, s_i>
    grad = torch.mul(s, g.unsqueeze(2))
    grad.sub_(s.mul_(t)).mul_(vt)
    if with_ce:
        p = torch.sub(z, m, out=s).sub_(lse1.unsqueeze(1)).exp_()  # softmax(z)
        grad.addcmul_(p, a)
        grad.scatter_add_(1, lab_c.unsqueeze(1), -a)
    return grad


# --------------------------------------------------------------------------- compilation


def _run(kernel: Callable, use_compile: bool, **kwargs: Any) -> Any:
    """``kernel(**kwargs)``, compiled (fusible formulation) or eager; counts the call."""
    state = _STATE
    if use_compile and not state.broken:
        # detach() drops the view relation to the 4-D/5-D logits, so that dynamo guards only on
        # the flattened (B, K, P) shape (no duck-sizing guard such as H == W).
        cargs = {n: a.detach() if isinstance(a, Tensor) else a for n, a in kwargs.items()}
        try:
            if kernel.__name__ not in state.cache:
                state.cache[kernel.__name__] = torch.compile(kernel, dynamic=True)
            out = state.cache[kernel.__name__](**cargs, fusible=True)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "use eager"
            state.broken = True
            print_log(
                f"mmseg_marginal: torch.compile of the fused marginal-loss kernels failed "
                f"({type(exc).__name__}: {exc}); falling back to eager kernels for the rest "
                "of this process.",
                logger="current",
                level=logging.WARNING,
            )
        else:
            state.compiled_calls += 1
            return out
    state.eager_calls += 1
    return kernel(**kwargs, fusible=False)


# --------------------------------------------------------------------------- autograd


class KernelOptions(NamedTuple):
    """The non-tensor inputs of :class:`FusedMarginalStats` (``autograd.Function.apply``
    takes positional arguments only)."""

    #: Ignored label (:data:`NO_IGNORE` for none).
    ignore_index: int
    #: Temperature of the softmax whose class sums are returned.
    tau: float
    #: Compute the CE sum (otherwise 0).
    with_ce: bool
    #: Count the argmax prediction per class.
    with_argmax: bool
    #: Run the ``torch.compile`` kernels.
    use_compile: bool


class FusedMarginalStats(torch.autograd.Function):
    """One pass over the logits for the CE sum, tempered-softmax class sums and label counts.

    Differentiable outputs: ``ce_sum`` and ``psum`` (gradient in the module docstring); the
    others are statistics of the labels and of the argmax prediction.

    Inputs (all on the logits' device):
        z (Tensor): Logits ``(B, K, P)``, float32 or float64, contiguous.
        label (Tensor): ``(B, P)`` int64 raw labels.
        cw (Tensor | None): ``(K,)`` CE class weights.
        pw (Tensor | None): ``(B, P)`` per-pixel CE weights.
        options (KernelOptions): ignored label, temperature, what to compute, compiled or not.

    Returns:
        tuple: ``ce_sum`` (0-dim, ``sum_i w_i (-log softmax(z_i)[y_i])`` over valid pixels,
        ``w`` = class weight x pixel weight), ``ce_denom`` (0-dim, ``sum_i valid_i c_{y_i}``),
        ``psum`` ``(B, K)`` (``sum_{i valid} softmax(tau z_i)``), ``counts`` ``(B, K)`` int64,
        ``am_counts`` ``(B, K)`` int64 (or 0-dim), ``n_valid`` ``(B,)`` int64, ``n_bad`` (0-dim
        int64, non-ignored labels outside ``[0, K)``; those pixels are treated as ignored).
    """

    @staticmethod
    def forward(
        ctx: Any,
        z: Tensor,
        label: Tensor,
        cw: Optional[Tensor],
        pw: Optional[Tensor],
        options: KernelOptions,
    ) -> Tuple[Tensor, ...]:
        out = _run(
            _forward_kernel,
            options.use_compile,
            z=z,
            label=label,
            cw=cw,
            pw=pw,
            ignore_index=options.ignore_index,
            tau=options.tau,
            with_ce=options.with_ce,
            with_argmax=options.with_argmax,
        )
        ce, denom, psum, counts, am_counts, n_valid, n_bad, m, lse1, lset = out
        ctx.options = options
        ctx.save_for_backward(z, label, cw, pw, m, lse1, lset)
        ctx.mark_non_differentiable(denom, counts, am_counts, n_valid, n_bad)
        return ce, denom, psum, counts, am_counts, n_valid, n_bad

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, g_ce: Optional[Tensor], _g1: Any, g_psum: Optional[Tensor], *_: Any
    ) -> tuple:
        z, label, cw, pw, m, lse1, lset = ctx.saved_tensors
        options: KernelOptions = ctx.options
        grad = _run(
            _backward_kernel,
            options.use_compile,
            z=z,
            label=label,
            cw=cw,
            pw=pw,
            m=m,
            lse1=lse1,
            lset=lset,
            g_ce=z.new_zeros(()) if g_ce is None else g_ce.to(z.dtype),
            g=z.new_zeros(z.shape[:2]) if g_psum is None else g_psum.to(z.dtype).contiguous(),
            ignore_index=options.ignore_index,
            tau=options.tau,
            with_ce=options.with_ce,
        )
        return grad, None, None, None, None


def fused_marginal_stats(
    z: Tensor,
    label: Tensor,
    *,
    ignore_index: Optional[int],
    tau: float,
    with_ce: bool = False,
    class_weight: Optional[Tensor] = None,
    pixel_weight: Optional[Tensor] = None,
    with_argmax: bool = False,
    compile: Union[bool, str] = "auto",
) -> Dict[str, Optional[Tensor]]:
    """Functional entry point of :class:`FusedMarginalStats`.

    Args:
        z (Tensor): Logits ``(B, K, P)`` (float32 or float64).
        label (Tensor): ``(B, P)`` integer labels.
        ignore_index (int | None): Ignored label.
        tau (float): Temperature of the predicted proportions.
        with_ce (bool): Also compute the CE sum and its denominator.
        class_weight (Tensor | None): ``(K,)`` CE class weights.
        pixel_weight (Tensor | None): ``(B, P)`` CE pixel weights.
        with_argmax (bool): Also count the argmax prediction per class.
        compile (bool | str): See :func:`resolve_compile`.

    Returns:
        dict: ``ce_sum``, ``ce_denom``, ``psum``, ``counts``, ``am_counts`` (None without
        ``with_argmax``), ``n_valid``, ``n_bad``; see :class:`FusedMarginalStats`. Autocast is
        disabled inside.
    """
    options = KernelOptions(
        ignore_index=NO_IGNORE if ignore_index is None else int(ignore_index),
        tau=float(tau),
        with_ce=bool(with_ce),
        with_argmax=bool(with_argmax),
        use_compile=resolve_compile(compile, z),
    )
    z = z.contiguous()
    label = label.contiguous().long()
    if class_weight is not None:
        class_weight = class_weight.to(z.dtype).contiguous()
    if pixel_weight is not None:
        pixel_weight = pixel_weight.to(z.dtype).contiguous()
    with torch.autocast(device_type=z.device.type, enabled=False):
        out = FusedMarginalStats.apply(z, label, class_weight, pixel_weight, options)
    names = ("ce_sum", "ce_denom", "psum", "counts", "am_counts", "n_valid", "n_bad")
    res = dict(zip(names, out))
    if not with_argmax:
        res["am_counts"] = None
    return res
