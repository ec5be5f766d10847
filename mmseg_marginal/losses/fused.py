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
forward and backward, and no one-hot label tensor is built. Two implementations of the same
kernels exist: eager torch ops (counts by ``bincount``), and the same math compiled with
``torch.compile(dynamic=True)`` (shapes symbolic, so image sizes do not trigger recompilation;
inductor adds at most one size-class switch, at 4096 pixels per image, plus one graph per
``(with_ce, with_argmax, tau, dtype)`` combination actually used). Compilation is used for large
float32 inputs (``compile='auto'``); any failure falls back to eager with one logged warning.
Set the environment variable ``MMSEG_MARGINAL_COMPILE=0`` to disable it globally.
Which path actually ran is observable through :func:`compile_stats` (counts of kernel calls
run compiled and eager, and whether compilation failed in this process).
"""

import logging
import os
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor
from torch.autograd.function import once_differentiable

#: Minimum number of logits elements for which ``compile='auto'`` compiles the kernels.
AUTO_COMPILE_MIN_NUMEL = 1 << 20


class CompileState:
    """Process state of the compiled kernels: their cache, failure flag and call counts.

    Attributes:
        cache (dict): Compiled kernels by name (``'fwd'``, ``'bwd'``).
        broken (bool): A compilation or a compiled call failed; eager is used from then on.
        compiled_calls (int): Kernel calls (forward or backward) that ran compiled.
        eager_calls (int): Kernel calls that ran eagerly (requested or after a failure).
    """

    def __init__(self) -> None:
        self.cache: Dict[str, Callable] = {}
        self.broken = False
        self.compiled_calls = 0
        self.eager_calls = 0


#: The state used by :class:`FusedMarginalStats` (replace it to start from a clean state).
COMPILE_STATE = CompileState()


def compile_stats() -> Dict[str, Union[bool, int]]:
    """Which kernels ran so far in this process.

    Returns:
        dict: ``compiled_calls`` and ``eager_calls`` (kernel calls, one per forward and one per
        backward of :class:`FusedMarginalStats`) and ``broken`` (compilation failed and the
        kernels fell back to eager).
    """
    st = COMPILE_STATE
    return dict(compiled_calls=st.compiled_calls, eager_calls=st.eager_calls, broken=st.broken)


# --------------------------------------------------------------------------- kernels
# Plain-tensor functions (no autograd inside): used eagerly and as torch.compile sources.
# Besides the heavy (B, K, P) work they also do all per-pixel label bookkeeping (validity, label
# range check, class counts, CE weights), so that the compiled forward is one fused pass and no
# (B, P)-sized op runs outside the kernels.


def _label_masks(label: Tensor, k: int, ignore_index: int) -> Tuple[Tensor, Tensor, Tensor]:
    """``(valid, clean_label, n_bad)``: labels outside [0, K) that are not ignored are bad."""
    not_ignored = label != ignore_index
    in_range = (label >= 0) & (label < k)
    n_bad = (not_ignored & ~in_range).sum()
    valid = not_ignored & in_range
    return valid, torch.where(valid, label, 0), n_bad


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


def _fwd_math(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    ignore_index: int,
    tau: float,
    with_ce: bool,
    with_argmax: bool,
) -> Tuple[Tensor, ...]:
    """Pointwise/reduction formulation (fuses well under ``torch.compile``)."""
    k = z.shape[1]
    valid, lab_c, n_bad = _label_masks(label, k, ignore_index)
    vf = valid.to(z.dtype)
    kk = torch.arange(k, device=z.device).view(1, k, 1)
    m = z.amax(1, keepdim=True)
    zs = z - m
    lset = torch.log(torch.exp(zs * tau).sum(1, keepdim=True))
    # written as a second exp (not exp / sum) so that inductor recomputes it instead of
    # materializing a logits-sized buffer
    psum = (torch.exp(zs * tau - lset) * vf.unsqueeze(1)).sum(2)
    lset = lset.squeeze(1)
    counts = ((lab_c.unsqueeze(1) == kk) & valid.unsqueeze(1)).sum(2)
    n_valid = valid.sum(1)
    if with_ce:
        w, denom = _ce_weights(valid, lab_c, cw, pw, z.dtype)
        lse1 = torch.log(torch.exp(zs).sum(1))
        zy = torch.gather(zs, 1, lab_c.unsqueeze(1)).squeeze(1)
        ce = ((lse1 - zy) * w).sum()
    else:
        lse1 = lset.new_zeros(())
        ce = denom = lset.new_zeros(())
    if with_argmax:
        # first index of the maximum (= argmax) as a min-reduction, which vectorizes
        am = torch.where(z == m, kk, k).amin(1, keepdim=True)
        am_counts = ((am == kk) & valid.unsqueeze(1)).sum(2)
    else:
        am_counts = counts.new_zeros(())
    return ce, denom, psum, counts, am_counts, n_valid, n_bad, m.squeeze(1), lse1, lset


def _bwd_math(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    ignore_index: int,
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    g_ce: Tensor,
    g: Tensor,
    tau: float,
    with_ce: bool,
) -> Tensor:
    """Analytic gradient, pointwise/reduction formulation."""
    k = z.shape[1]
    valid, lab_c, _ = _label_masks(label, k, ignore_index)
    zs = z - m.unsqueeze(1)
    e1 = torch.exp(zs)
    if float(tau).is_integer() and 1 <= tau <= 32:
        # exp(tau zs) = exp(zs) ** tau: one exp per element for both softmaxes
        s = e1 ** int(tau) * torch.exp(-lset).unsqueeze(1)
    else:
        s = torch.exp(zs * tau - lset.unsqueeze(1))
    gk = g.unsqueeze(2)
    t = (s * gk).sum(1, keepdim=True)
    grad = (valid.to(z.dtype) * tau).unsqueeze(1) * s * (gk - t)
    if with_ce:
        a = _ce_weights(valid, lab_c, cw, pw, z.dtype)[0] * g_ce
        kk = torch.arange(k, device=z.device).view(1, k, 1)
        onehot = (kk == lab_c.unsqueeze(1)).to(z.dtype)
        grad = grad + a.unsqueeze(1) * (e1 * torch.exp(-lse1).unsqueeze(1) - onehot)
    return grad


def _fwd_eager(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    ignore_index: int,
    tau: float,
    with_ce: bool,
    with_argmax: bool,
) -> Tuple[Tensor, ...]:
    """Eager formulation: one reused logits-sized buffer, in-place ops, bmm and bincount.

    Saves the same statistics as :func:`_fwd_math` (``lset``, ``lse1`` relative to the max).
    """
    b, k = z.shape[:2]
    valid, lab_c, n_bad = _label_masks(label, k, ignore_index)
    vf = valid.to(z.dtype)
    m = z.amax(1, keepdim=True)
    am = None
    if with_argmax:
        if z.numel() < (1 << 20):  # Tensor.max(dim) has a large fixed cost on small CPU inputs
            kk = torch.arange(k, device=z.device).view(1, k, 1)
            am = torch.where(z == m, kk, k).amin(1, keepdim=True)  # first index of the max
        else:
            am = z.max(1, keepdim=True)[1]
    buf = torch.sub(z, m).mul_(tau).exp_()  # exp(tau (z - max))
    set_ = buf.sum(1, keepdim=True)
    psum = torch.bmm(buf, (vf.unsqueeze(1) / set_).transpose(1, 2)).squeeze(2)
    lset = torch.log(set_).squeeze(1)
    offset = torch.arange(b, device=z.device).unsqueeze(1) * (k + 1)

    def count(lab: Tensor) -> Tensor:
        idx = (torch.where(valid, lab, k) + offset).reshape(-1)
        return torch.bincount(idx, minlength=b * (k + 1)).reshape(b, k + 1)[:, :k]

    counts = count(lab_c)
    n_valid = valid.sum(1)
    if with_ce:
        w, denom = _ce_weights(valid, lab_c, cw, pw, z.dtype)
        torch.sub(z, m, out=buf).exp_()
        lse1 = torch.log(buf.sum(1))
        zy = torch.gather(z, 1, lab_c.unsqueeze(1)).squeeze(1) - m.squeeze(1)
        ce = ((lse1 - zy) * w).sum()
    else:
        lse1 = lset.new_zeros(())
        ce = denom = lset.new_zeros(())
    del buf
    am_counts = count(am.squeeze(1)) if with_argmax else counts.new_zeros(())
    return ce, denom, psum, counts, am_counts, n_valid, n_bad, m.squeeze(1), lse1, lset


def _bwd_eager(
    z: Tensor,
    label: Tensor,
    cw: Optional[Tensor],
    pw: Optional[Tensor],
    ignore_index: int,
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    g_ce: Tensor,
    g: Tensor,
    tau: float,
    with_ce: bool,
) -> Tensor:
    """Eager analytic gradient: two logits-sized buffers (the gradient and one temporary)."""
    valid, lab_c, _ = _label_masks(label, z.shape[1], ignore_index)
    m = m.unsqueeze(1)
    s = torch.sub(z, m).mul_(tau).sub_(lset.unsqueeze(1)).exp_()  # softmax(tau z)
    t = torch.bmm(g.unsqueeze(1), s)  # (B, 1, P) = <G_b, s_i>
    grad = torch.mul(s, g.unsqueeze(2))
    grad.sub_(s.mul_(t)).mul_((valid.to(z.dtype) * tau).unsqueeze(1))
    if with_ce:
        a = _ce_weights(valid, lab_c, cw, pw, z.dtype)[0] * g_ce
        p = torch.sub(z, m, out=s).sub_(lse1.unsqueeze(1)).exp_()  # softmax(z)
        grad.addcmul_(p, a.unsqueeze(1))
        grad.scatter_add_(1, lab_c.unsqueeze(1), -a.unsqueeze(1))
    return grad


# --------------------------------------------------------------------------- compilation


def _compiled(name: str, fn: Callable) -> Callable:
    cache = COMPILE_STATE.cache
    if name not in cache:
        cache[name] = torch.compile(fn, dynamic=True)
    return cache[name]


def compile_available() -> bool:
    """Whether the compiled kernels may be used (torch has ``torch.compile``, not disabled, no
    earlier failure)."""
    return (
        hasattr(torch, "compile")  # torch >= 2.0
        and not COMPILE_STATE.broken
        and os.environ.get("MMSEG_MARGINAL_COMPILE", "1") != "0"
    )


def _is_compiling() -> bool:
    """Whether dynamo is tracing the caller (``torch.compiler.is_compiling``, torch >= 2.3)."""
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:  # torch 2.0-2.2
        check = getattr(getattr(torch, "_dynamo", None), "is_compiling", None)
    return bool(check()) if check is not None else False


def resolve_compile(mode: Union[bool, str], z: Tensor) -> bool:
    """Decide whether to run the compiled kernels for logits ``z``.

    Args:
        mode (bool | str): ``True`` (compile whenever possible), ``False`` (always eager) or
            ``'auto'`` (compile float32 inputs of at least :data:`AUTO_COMPILE_MIN_NUMEL`
            elements, where compilation pays off).
        z (Tensor): Logits.
    """
    if mode not in (True, False, "auto"):
        raise ValueError(f"compile must be True, False or 'auto', got {mode!r}")
    if mode is False or not compile_available():
        return False
    if _is_compiling():
        return False
    if mode == "auto":
        return z.dtype == torch.float32 and z.numel() >= AUTO_COMPILE_MIN_NUMEL
    return True


def _run(name: str, math_fn: Callable, eager_fn: Callable, use_compile: bool, *args: object):
    state = COMPILE_STATE
    if use_compile and not state.broken:
        # detach() drops the view relation to the 4-D/5-D logits, so that dynamo guards only on
        # the flattened (B, K, P) shape (no duck-sizing guard such as H == W).
        cargs = tuple(a.detach() if isinstance(a, Tensor) else a for a in args)
        try:
            out = _compiled(name, math_fn)(*cargs)
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
    return eager_fn(*args)


# --------------------------------------------------------------------------- autograd

#: Stand-in for ``ignore_index=None`` (no pixel is ignored): no label can take this value
#: without also being outside ``[0, K)``.
NO_IGNORE = -(2**62)


class FusedMarginalStats(torch.autograd.Function):
    """One pass over the logits for the CE sum, tempered-softmax class sums and label counts.

    Differentiable outputs: ``ce_sum`` and ``psum`` (gradient in the module docstring); the
    others are statistics of the labels and of the argmax prediction.

    Inputs (all on the logits' device):
        z (Tensor): Logits ``(B, K, P)``, float32 or float64, contiguous.
        label (Tensor): ``(B, P)`` int64 raw labels.
        cw (Tensor | None): ``(K,)`` CE class weights.
        pw (Tensor | None): ``(B, P)`` per-pixel CE weights.
        ignore_index (int): Ignored label (:data:`NO_IGNORE` for none).
        tau (float): Temperature of the softmax whose class sums are returned.
        with_ce (bool): Compute the CE sum (otherwise 0).
        with_argmax (bool): Count the argmax prediction per class.
        use_compile (bool): Run the ``torch.compile`` kernels.

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
        ignore_index: int,
        tau: float,
        with_ce: bool,
        with_argmax: bool,
        use_compile: bool,
    ) -> Tuple[Tensor, ...]:
        out = _run(
            "fwd", _fwd_math, _fwd_eager, use_compile, z, label, cw, pw, ignore_index, tau,
            with_ce, with_argmax,
        )  # fmt: skip
        ce, denom, psum, counts, am_counts, n_valid, n_bad, m, lse1, lset = out
        ctx.use_compile = use_compile
        ctx.tau = tau
        ctx.with_ce = with_ce
        ctx.ignore_index = ignore_index
        ctx.save_for_backward(z, label, cw, pw, m, lse1, lset)
        ctx.mark_non_differentiable(denom, counts, am_counts, n_valid, n_bad)
        return ce, denom, psum, counts, am_counts, n_valid, n_bad

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, g_ce: Optional[Tensor], _g1: Any, g_psum: Optional[Tensor], *_: Any
    ) -> tuple:
        z, label, cw, pw, m, lse1, lset = ctx.saved_tensors
        g_psum = z.new_zeros(z.shape[:2]) if g_psum is None else g_psum.to(z.dtype).contiguous()
        g_ce = z.new_zeros(()) if g_ce is None else g_ce.to(z.dtype)
        args = (z, label, cw, pw, ctx.ignore_index, m, lse1, lset, g_ce, g_psum, ctx.tau,
                ctx.with_ce)  # fmt: skip
        grad = _run("bwd", _bwd_math, _bwd_eager, ctx.use_compile, *args)
        return (grad,) + (None,) * 8


def fused_marginal_stats(
    z: Tensor,
    label: Tensor,
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
    use_compile = resolve_compile(compile, z)
    z = z.contiguous()
    label = label.contiguous().long()
    if class_weight is not None:
        class_weight = class_weight.to(z.dtype).contiguous()
    if pixel_weight is not None:
        pixel_weight = pixel_weight.to(z.dtype).contiguous()
    ign = NO_IGNORE if ignore_index is None else int(ignore_index)
    with torch.autocast(device_type=z.device.type, enabled=False):
        out = FusedMarginalStats.apply(
            z, label, class_weight, pixel_weight, ign, float(tau), bool(with_ce),
            bool(with_argmax), use_compile,
        )  # fmt: skip
    names = ("ce_sum", "ce_denom", "psum", "counts", "am_counts", "n_valid", "n_bad")
    res = dict(zip(names, out))
    if not with_argmax:
        res["am_counts"] = None
    return res
