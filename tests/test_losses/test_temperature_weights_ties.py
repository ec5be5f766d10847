"""Values that depend on the temperature, the weights and argmax ties.

The logits here are tau-asymmetric (the value at tau != 1 differs from the value at tau = 1),
the weights are not 1, and the references are written from the definitions in this file, not
taken from the package.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from loss_cases import random_batch

from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss

EPS = torch.finfo(torch.float32).eps


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _one_image():
    """Pixels a = [0, 1] (label 1), b = [0, -2] (label 0), c = [5, 0] (ignored)."""
    z = torch.tensor([[[[0.0, 0.0, 5.0]], [[1.0, -2.0, 0.0]]]], dtype=torch.float64)
    return z, torch.tensor([[[1, 0, 255]]])


def _hand_r(penalty: str, tau: float) -> float:
    p0 = (sig(-tau) + sig(2 * tau) + 1e-10) / (2 + 1e-10)
    p1 = (sig(tau) + sig(-2 * tau) + 1e-10) / (2 + 1e-10)
    y = (1 + 1e-10) / (2 + 1e-10)  # both classes
    if penalty == "l1":
        return (abs(y - p0) + abs(y - p1)) / 2
    return y * math.log(y / p0) + y * math.log(y / p1)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
@pytest.mark.parametrize("tau", [2.0, 0.5])
def test_hand_values_at_tau_not_1(penalty, tau):
    z, label = _one_image()
    r = _hand_r(penalty, tau)
    assert abs(r - _hand_r(penalty, 1.0)) > 1e-3  # the temperature matters on these logits
    got = LabelMarginalLoss(penalty, temperature=tau, loss_weight=0.7)(z, label)
    assert got.item() == pytest.approx(0.7 * r, rel=1e-12)
    # -log softmax([0, 1])_1 and -log softmax([0, -2])_0 over (2 + mmseg's float32 eps)
    ce = (softplus(-1.0) + softplus(-2.0)) / (2 + EPS)
    combined = CEMarginalLoss(penalty, marginal_weight=0.3, temperature=tau, loss_weight=1.7)
    assert combined(z, label).item() == pytest.approx(1.7 * (ce + 0.3 * r), rel=1e-12)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_binary_hand_values_at_tau_not_1(penalty):
    z = torch.tensor([[[[0.5, -1.0, 2.0]]]], dtype=torch.float64)
    label = torch.tensor([[[1, 0, 255]]])
    tau = 3.0
    p = (sig(1.5) + sig(-3.0) + 1e-10) / (2 + 1e-10)
    y = (1 + 1e-10) / (2 + 1e-10)
    if penalty == "l1":
        r = abs(y - p)
    else:
        r = y * math.log(y / p) + (1 - y) * math.log((1 - y) / (1 - p))
    got = LabelMarginalLoss(penalty, temperature=tau, use_sigmoid=True)(z, label)
    assert got.item() == pytest.approx(r, rel=1e-9)
    bce = (softplus(-0.5) + softplus(-1.0)) / (2 + EPS)
    loss = CEMarginalLoss(penalty, marginal_weight=0.4, temperature=tau, use_sigmoid=True)
    assert loss(z, label).item() == pytest.approx(bce + 0.4 * r, rel=1e-9)


def reference_ce_marginal(z, label, penalty: str, lam: float, tau: float):
    """CE + lam * R from the definitions, with plain autograd (float64)."""
    k = z.shape[1]
    valid = label != 255
    lab_c = torch.where(valid, label, 0)
    logp = torch.log_softmax(z, 1)
    nll = -(logp.gather(1, lab_c.unsqueeze(1)).squeeze(1) * valid).sum()
    ce = nll / (valid.sum().double() + EPS)
    n = valid.flatten(1).sum(1, keepdim=True).double()
    s = torch.softmax(tau * z, 1) * valid.unsqueeze(1)
    onehot = F.one_hot(lab_c, k).movedim(-1, 1) * valid.unsqueeze(1)
    p = (s.flatten(2).sum(2) + 1e-10) / (n + 1e-10)
    y = (onehot.flatten(2).sum(2).double() + 1e-10) / (n + 1e-10)
    if penalty == "l1":
        r = (y - p).abs().mean(1).mean()
    else:
        r = (y * torch.log(y / p)).sum(1).mean()
    return ce + lam * r, r


@pytest.mark.parametrize("penalty", ["l1", "kl"])
@pytest.mark.parametrize("compile_mode", [False, True])
def test_ce_marginal_at_tau_not_1_against_plain_autograd(penalty, compile_mode, monkeypatch):
    if compile_mode:  # the compiled-path formulation, run without a compiler
        monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    z, label = random_batch(b=3, k=5, h=6, w=7, seed=11)
    z = z * 1.5
    z1 = z.clone().requires_grad_()
    z2 = z.clone().requires_grad_()
    loss = CEMarginalLoss(penalty, marginal_weight=0.3, temperature=2.5, compile=compile_mode)
    got = loss(z1, label)
    want, _ = reference_ce_marginal(z2, label, penalty, 0.3, 2.5)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-10, atol=1e-12)
    assert loss.kernels.stats().compiled_calls == (2 if compile_mode else 0)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_last_stats_are_r_before_the_weights(penalty):
    z, label = random_batch(b=3, k=5, h=6, w=7, seed=12)
    _, r = reference_ce_marginal(z, label, penalty, 0.0, 2.0)
    loss = CEMarginalLoss(penalty, marginal_weight=0.3, temperature=2.0, loss_weight=2.5)
    loss.enable_stats()
    loss(z, label)
    assert loss.last_stats.marginal.item() == pytest.approx(r.item(), rel=1e-6)
    alone = LabelMarginalLoss(penalty, temperature=2.0, loss_weight=0.4)
    alone.enable_stats()
    value = alone(z, label)
    assert alone.last_stats.marginal.item() == pytest.approx(r.item(), rel=1e-6)
    assert value.item() == pytest.approx(0.4 * r.item(), rel=1e-12)


@pytest.mark.parametrize("cls", [LabelMarginalLoss, CEMarginalLoss])
def test_binary_zero_logit_is_background(cls):
    """A zero logit is a tie; the argmax prediction there is background (foreground is
    ``z > 0``): all-foreground labels then give ``|y - q| = 1`` for both classes."""
    z = torch.zeros(2, 1, 3, 4, dtype=torch.float64)
    z[1, 0, 0, 0] = 1e-3  # one foreground prediction in image 1
    label = torch.ones(2, 3, 4, dtype=torch.long)
    loss = cls(use_sigmoid=True)
    loss.enable_stats()
    loss(z, label)
    # image 0: q_fg = 0; image 1: q_fg = 1/12; |y - q| is the same for both classes
    expected = (1.0 + (1 - 1 / 12)) / 2
    assert loss.last_stats.prop_mae.item() == pytest.approx(expected, rel=1e-6)
