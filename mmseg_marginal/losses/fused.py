"""Fused cross-entropy and tempered-softmax class sums with an analytic backward.

The label-marginal losses need, per image ``b`` and class ``k``, the sum over valid pixels of
the tempered softmax ``s_i = softmax(tau * z_i)`` and, for the combined loss, the (weighted)
cross-entropy sum. :class:`FusedCEProportions` computes both in one forward and writes the
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
forward and backward. Two implementations of the same kernels exist: eager torch ops, and the
same math compiled with ``torch.compile(dynamic=True)`` (one compilation per kernel variant,
shapes symbolic, so no recompilation when image sizes change). Compilation is used for large
float32 inputs (``compile='auto'``); any failure falls back to eager with one logged warning.
Set the environment variable ``MMSEG_MARGINAL_COMPILE=0`` to disable it globally.
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

_COMPILED: Dict[str, Callable] = {}
_COMPILE_BROKEN = False


# --------------------------------------------------------------------------- kernels
# Plain-tensor functions (no autograd inside): used eagerly and as torch.compile sources.


def _fwd_math(
    z: Tensor,
    label: Tensor,
    valid: Tensor,
    ce_w: Optional[Tensor],
    tau: float,
    with_ce: bool,
    with_argmax: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Pointwise/reduction formulation (fuses well under ``torch.compile``)."""
    m = z.amax(1, keepdim=True)
    zs = z - m
    et = torch.exp(zs * tau)
    set_ = et.sum(1, keepdim=True)
    psum = (et * (valid.unsqueeze(1) / set_)).sum(2)
    lset = torch.log(set_).squeeze(1)
    if with_ce:
        lse1 = torch.log(torch.exp(zs).sum(1))
        zy = torch.gather(zs, 1, label.unsqueeze(1)).squeeze(1)
        ce = ((lse1 - zy) * ce_w).sum()
    else:
        lse1 = lset.new_zeros(())
        ce = lset.new_zeros(())
    am = z.argmax(1) if with_argmax else label.new_zeros(())
    return ce, psum, m.squeeze(1), lse1, lset, am


def _bwd_math(
    z: Tensor,
    label: Tensor,
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    a: Optional[Tensor],
    v: Tensor,
    g: Tensor,
    tau: float,
    with_ce: bool,
) -> Tensor:
    """Analytic gradient, pointwise/reduction formulation."""
    zs = z - m.unsqueeze(1)
    s = torch.exp(zs * tau - lset.unsqueeze(1))
    gk = g.unsqueeze(2)
    t = (s * gk).sum(1, keepdim=True)
    grad = v.unsqueeze(1) * s * (gk - t)
    if with_ce:
        k = torch.arange(z.shape[1], device=z.device).view(1, -1, 1)
        onehot = (k == label.unsqueeze(1)).to(z.dtype)
        grad = grad + a.unsqueeze(1) * (torch.exp(zs - lse1.unsqueeze(1)) - onehot)
    return grad


def _fwd_eager(
    z: Tensor,
    label: Tensor,
    valid: Tensor,
    ce_w: Optional[Tensor],
    tau: float,
    with_ce: bool,
    with_argmax: bool,
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Eager formulation built on fused torch kernels (softmax, logsumexp, bmm)."""
    zt = z * tau
    lset = torch.logsumexp(zt, 1)
    s = zt.sub_(lset.unsqueeze(1)).exp_()
    psum = torch.bmm(s, valid.unsqueeze(2)).squeeze(2)
    del s
    if with_ce:
        lse1 = torch.logsumexp(z, 1)
        zy = torch.gather(z, 1, label.unsqueeze(1)).squeeze(1)
        ce = ((lse1 - zy) * ce_w).sum()
    else:
        lse1 = lset.new_zeros(())
        ce = lset.new_zeros(())
    am = z.argmax(1) if with_argmax else label.new_zeros(())
    m = lset.new_zeros(())  # the eager backward works from the raw logits
    return ce, psum, m, lse1, lset, am


def _bwd_eager(
    z: Tensor,
    label: Tensor,
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    a: Optional[Tensor],
    v: Tensor,
    g: Tensor,
    tau: float,
    with_ce: bool,
) -> Tensor:
    """Eager analytic gradient (at most three logits-sized temporaries)."""
    s = z.mul(tau).sub_(lset.unsqueeze(1)).exp_()
    t = torch.bmm(g.unsqueeze(1), s)  # (B, 1, P) = <G_b, s_i>
    grad = s * g.unsqueeze(2)
    grad.sub_(s.mul_(t))
    del s
    grad.mul_(v.unsqueeze(1))
    if with_ce:
        p = z.sub(lse1.unsqueeze(1)).exp_()
        grad.addcmul_(p, a.unsqueeze(1))
        del p
        grad.scatter_add_(1, label.unsqueeze(1), -a.unsqueeze(1))
    return grad


# --------------------------------------------------------------------------- compilation


def _compiled(name: str, fn: Callable) -> Callable:
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=True)
    return _COMPILED[name]


def compile_available() -> bool:
    """Whether the compiled kernels may be used (not disabled, no earlier failure)."""
    return not _COMPILE_BROKEN and os.environ.get("MMSEG_MARGINAL_COMPILE", "1") != "0"


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
    if torch.compiler.is_compiling():
        return False
    if mode == "auto":
        return z.dtype == torch.float32 and z.numel() >= AUTO_COMPILE_MIN_NUMEL
    return True


def _run(name: str, math_fn: Callable, eager_fn: Callable, use_compile: bool, *args: object):
    global _COMPILE_BROKEN
    if use_compile and not _COMPILE_BROKEN:
        # detach() drops the view relation to the 4-D/5-D logits, so that dynamo guards only on
        # the flattened (B, K, P) shape (no duck-sizing guard such as H == W).
        cargs = tuple(a.detach() if isinstance(a, Tensor) else a for a in args)
        try:
            return _compiled(name, math_fn)(*cargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "use eager"
            _COMPILE_BROKEN = True
            print_log(
                f"mmseg_marginal: torch.compile of the fused marginal-loss kernels failed "
                f"({type(exc).__name__}: {exc}); falling back to eager kernels for the rest "
                "of this process.",
                logger="current",
                level=logging.WARNING,
            )
    return eager_fn(*args)


# --------------------------------------------------------------------------- autograd


class FusedCEProportions(torch.autograd.Function):
    """``(ce_sum, psum, argmax) = f(z)``; see the module docstring for the gradient.

    Inputs (all on the logits' device):
        z (Tensor): Logits ``(B, K, P)``, float32 or float64, contiguous.
        label (Tensor): ``(B, P)`` int64 labels in ``[0, K)`` (ignored pixels set to any valid
            class, e.g. 0; they are masked by ``valid`` and ``ce_w``).
        valid (Tensor): ``(B, P)`` float validity mask (1 valid, 0 ignored), z's dtype.
        ce_w (Tensor | None): ``(B, P)`` per-pixel CE weight (0 on ignored pixels); None when
            ``with_ce`` is False.
        tau (float): Temperature of the softmax whose class sums are returned.
        with_ce (bool): Also return ``sum_i ce_w_i * (-log softmax(z_i)[y_i])``.
        with_argmax (bool): Also return the per-pixel argmax (non-differentiable).
        use_compile (bool): Run the ``torch.compile`` kernels.

    Returns:
        tuple: ``ce_sum`` (0-dim), ``psum`` ``(B, K)`` with
        ``psum[b, k] = sum_{i valid} softmax(tau * z_i)_k``, ``argmax`` ``(B, P)`` int64 (or a
        0-dim placeholder).
    """

    @staticmethod
    def forward(
        ctx: Any,
        z: Tensor,
        label: Tensor,
        valid: Tensor,
        ce_w: Optional[Tensor],
        tau: float,
        with_ce: bool,
        with_argmax: bool,
        use_compile: bool,
    ) -> Tuple[Tensor, Tensor, Tensor]:
        ce, psum, m, lse1, lset, am = _run(
            "fwd", _fwd_math, _fwd_eager, use_compile, z, label, valid, ce_w, tau, with_ce,
            with_argmax,
        )  # fmt: skip
        # The eager backward does not use ``m``: recompute consistently with the kernel used.
        ctx.used_compile = use_compile and not _COMPILE_BROKEN
        ctx.tau = tau
        ctx.with_ce = with_ce
        ctx.save_for_backward(z, label, valid, ce_w, m, lse1, lset)
        ctx.mark_non_differentiable(am)
        return ce, psum, am

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_ce: Tensor, g_psum: Tensor, _g_am: Optional[Tensor]) -> tuple:
        z, label, valid, ce_w, m, lse1, lset = ctx.saved_tensors
        if g_psum is None:
            g_psum = z.new_zeros(z.shape[:2])
        g_psum = g_psum.to(z.dtype).contiguous()
        a = None
        if ctx.with_ce:
            a = ce_w * (g_ce.to(z.dtype) if g_ce is not None else 0.0)
        v = valid * ctx.tau
        if ctx.used_compile:
            grad = _run(
                "bwd", _bwd_math, _bwd_eager_from_math, True, z, label, m, lse1, lset, a, v,
                g_psum, ctx.tau, ctx.with_ce,
            )  # fmt: skip
        else:
            grad = _bwd_eager(z, label, m, lse1, lset, a, v, g_psum, ctx.tau, ctx.with_ce)
        return grad, None, None, None, None, None, None, None


def _bwd_eager_from_math(
    z: Tensor,
    label: Tensor,
    m: Tensor,
    lse1: Tensor,
    lset: Tensor,
    a: Optional[Tensor],
    v: Tensor,
    g: Tensor,
    tau: float,
    with_ce: bool,
) -> Tensor:
    """Eager fallback for a backward whose forward ran compiled (``lset`` relative to max)."""
    lset_abs = lset + tau * m
    return _bwd_eager(z, label, m, lse1, lset_abs, a, v, g, tau, with_ce)


def fused_ce_proportions(
    z: Tensor,
    label: Tensor,
    valid: Tensor,
    ce_w: Optional[Tensor],
    tau: float,
    with_ce: bool,
    with_argmax: bool,
    compile: Union[bool, str] = "auto",
) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Functional entry point of :class:`FusedCEProportions`.

    ``z`` is ``(B, K, P)``; see the class for the other arguments. Autocast is disabled inside
    (the math runs in ``z``'s dtype, float32 or float64).

    Returns:
        tuple: ``(ce_sum, psum, argmax or None)``.
    """
    use_compile = resolve_compile(compile, z)
    z = z.contiguous()
    valid = valid.to(z.dtype)
    if ce_w is not None:
        ce_w = ce_w.to(z.dtype)
    with torch.autocast(device_type=z.device.type, enabled=False):
        ce, psum, am = FusedCEProportions.apply(
            z, label, valid, ce_w, float(tau), bool(with_ce), bool(with_argmax), use_compile
        )
    return ce, psum, (am if with_argmax else None)
