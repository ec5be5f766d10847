"""Mathematics and bad-input behaviour of the label-marginal regularizer."""

import contextlib
import math

import pytest
import torch
from loss_cases import random_batch, tiny_batch, tiny_binary

from mmseg_marginal.losses import (
    CEMarginalLoss,
    LabelMarginalLoss,
    gt_proportions,
    marginal_penalty,
    predicted_proportions,
)

KL0 = (2 / 3) * math.log((2 / 3) / 0.5) + (1 / 3) * math.log((1 / 3) / 0.5)


def test_gt_proportions_hand_values():
    _, label = tiny_batch()
    props, n = gt_proportions(label, 2)
    assert n.tolist() == [3, 4]
    torch.testing.assert_close(props[0], torch.tensor([2 / 3, 1 / 3]))
    # absent class: (0 + 1e-10) / (4 + 1e-10)
    torch.testing.assert_close(props[1], torch.tensor([2.5e-11, 1.0]), rtol=1e-5, atol=0)


def test_predicted_proportions_hand_values_and_mask():
    z, label = tiny_batch()
    p = predicted_proportions(z, label, temperature=1.0)
    torch.testing.assert_close(p, torch.full((2, 2), 0.5, dtype=torch.float64))
    # temperature sharpens: pixel [0, log 3] -> softmax(10 z) = [1, 3^10] / (1 + 3^10)
    p10 = predicted_proportions(z, label, temperature=10.0)
    a = 1 / (1 + 3.0**10)
    torch.testing.assert_close(p10[0, 0], torch.tensor((0.5 + a + (1 - a)) / 3, dtype=z.dtype))


@pytest.mark.parametrize(
    "penalty,reduction,expected",
    [
        ("l1", None, 1 / 6),
        ("l1", "mean", 1 / 6),
        ("l1", "sum", 1 / 3),
        ("kl", None, KL0),
        ("kl", "sum", KL0),
        ("kl", "mean", KL0 / 2),
    ],
)
def test_label_marginal_hand_values(penalty, reduction, expected):
    z, label = tiny_batch()
    loss = LabelMarginalLoss(penalty, temperature=1.0, class_reduction=reduction, loss_weight=2.0)
    # image 0 only (image 1 checked separately)
    val = loss(z[:1], label[:1])
    assert val.item() == pytest.approx(2.0 * expected, rel=1e-8)


def test_image_batch_prior_targets_hand_values():
    z, label = tiny_batch()
    # image 1: y = [0, 1], p = [.5, .5] -> L1 mean = .5
    per_image = LabelMarginalLoss("l1", temperature=1.0)(z, label)
    assert per_image.item() == pytest.approx((1 / 6 + 0.5) / 2, rel=1e-8)
    # pooled: counts [2, 5] over 7 pixels, p sums [3.5, 3.5]
    pooled = LabelMarginalLoss("l1", temperature=1.0, pooling="batch")(z, label)
    assert pooled.item() == pytest.approx((abs(2 / 7 - 0.5) + abs(5 / 7 - 0.5)) / 2, rel=1e-8)
    prior = LabelMarginalLoss("l1", temperature=1.0, prior=[0.4, 0.6])(z, label)
    assert prior.item() == pytest.approx(0.1, rel=1e-8)
    kl_prior = LabelMarginalLoss("kl", temperature=1.0, prior=[0.4, 0.6])
    expected = 0.4 * math.log(0.4 / 0.5) + 0.6 * math.log(0.6 / 0.5)
    assert kl_prior(z, label).item() == pytest.approx(expected, rel=1e-8)


def test_mean_is_sum_over_k():
    z, label = random_batch(k=6)
    for penalty in ("l1", "kl"):
        s = LabelMarginalLoss(penalty, class_reduction="sum")(z, label)
        m = LabelMarginalLoss(penalty, class_reduction="mean")(z, label)
        torch.testing.assert_close(m, s / 6)


def test_binary_hand_values():
    z, label = tiny_binary()
    l1 = LabelMarginalLoss("l1", temperature=1.0, use_sigmoid=True)(z, label)
    assert l1.item() == pytest.approx(1 / 6, rel=1e-8)
    kl = LabelMarginalLoss("kl", temperature=1.0, use_sigmoid=True)(z, label)
    expected = (2 / 3) * math.log((2 / 3) / 0.5) + (1 / 3) * math.log((1 / 3) / 0.5)
    assert kl.item() == pytest.approx(expected, rel=1e-8)
    prior = LabelMarginalLoss("l1", temperature=1.0, use_sigmoid=True, prior=[0.2])
    assert prior(z, label).item() == pytest.approx(0.3, rel=1e-8)


def test_penalty_function_matches_module():
    z, label = random_batch()
    y, _ = gt_proportions(label, 5)
    p = predicted_proportions(z, label, temperature=10.0)
    per_image = marginal_penalty(y, p, "kl")
    torch.testing.assert_close(LabelMarginalLoss("kl")(z, label), per_image.mean())


def test_3d_input_equals_flattened_2d():
    z, label = random_batch(b=2, k=4, h=6, w=4)
    z3, l3 = z.reshape(2, 4, 2, 3, 4), label.reshape(2, 2, 3, 4)
    for penalty in ("l1", "kl"):
        loss = LabelMarginalLoss(penalty)
        torch.testing.assert_close(loss(z3, l3), loss(z, label))


def test_last_stats_hand_values():
    z, label = tiny_batch()
    loss = LabelMarginalLoss("l1", temperature=1.0)
    loss.enable_stats()
    val = loss(z.requires_grad_(), label)
    stats = loss.last_stats
    assert stats._fields == ("marginal", "prop_mae")
    assert not stats.marginal.requires_grad
    assert stats.marginal.item() == pytest.approx(val.item(), rel=1e-6)
    # argmax: image 0 -> [0, 1, 0] = GT proportions; image 1 -> all class 0 (tie) vs GT all 1
    assert stats.prop_mae.item() == pytest.approx(0.5, rel=1e-6)
    loss.eval()
    loss(z[:1], label[:1])
    assert loss.last_stats is stats  # evaluation forwards record nothing
    loss.enable_stats(False)
    assert loss.last_stats is None


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(penalty="l1"),
        dict(penalty="kl"),
        dict(penalty="l1", pooling="batch"),
        dict(penalty="kl", pooling="batch"),
        dict(penalty="kl", prior=[0.1, 0.2, 0.3, 0.25, 0.15]),
        dict(penalty="l1", temperature=3.0, class_reduction="sum"),
    ],
)
def test_gradcheck(kwargs):
    z, label = random_batch()
    loss = LabelMarginalLoss(**kwargs)
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.requires_grad_(),))


@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_gradcheck_binary(penalty):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 1, 4, 5, generator=g, dtype=torch.float64)
    label = torch.randint(0, 2, (2, 4, 5), generator=g)
    label[:, 0] = 255
    loss = LabelMarginalLoss(penalty, use_sigmoid=True, temperature=2.0)
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.requires_grad_(),))


def test_gradient_matches_plain_autograd_reference():
    z, label = random_batch(k=4, present=2)
    z32 = z.float().requires_grad_()
    LabelMarginalLoss("kl", temperature=10.0)(z32, label).backward()
    zr = z.float().requires_grad_()
    valid = (label != 255).float()
    s = torch.softmax(10.0 * zr, 1)
    n = valid.sum((1, 2))
    p = ((s * valid[:, None]).sum((2, 3)) + 1e-10) / (n[:, None] + 1e-10)
    y = torch.stack([(label == k).float().sum((1, 2)) for k in range(4)], 1)
    y = (y + 1e-10) / (n[:, None] + 1e-10)
    (y * torch.log(y / p)).sum(1).mean().backward()
    torch.testing.assert_close(z32.grad, zr.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target", ["image", "batch", "prior"])
def test_all_ignored_gives_zero_and_zero_gradient(target):
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    label = torch.full((2, 4, 4), 255)
    prior = [0.2, 0.3, 0.5] if target == "prior" else None
    for penalty in ("l1", "kl"):
        pooling = "image" if target == "prior" else target
        loss = LabelMarginalLoss(penalty, pooling=pooling, prior=prior)(z, label)
        (grad,) = torch.autograd.grad(loss, z)
        assert loss.item() == 0.0
        assert torch.equal(grad, torch.zeros_like(grad))


def test_all_ignored_image_contributes_zero():
    z, label = random_batch(b=2)
    single = LabelMarginalLoss("l1", prior=[0.2] * 5)(z[:1], label[:1])
    label[1] = 255
    z.requires_grad_()
    both = LabelMarginalLoss("l1", prior=[0.2] * 5)(z, label)
    assert both.item() == pytest.approx(single.item() / 2, rel=1e-10)
    (grad,) = torch.autograd.grad(both, z)
    assert torch.equal(grad[1], torch.zeros_like(grad[1]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_half_precision_large_logits(dtype, penalty):
    g = torch.Generator().manual_seed(2)
    z = ((torch.rand(2, 4, 8, 8, generator=g) * 2 - 1) * 50).to(dtype).requires_grad_()
    label = torch.randint(0, 4, (2, 8, 8), generator=g)
    label[:, :2] = 255
    loss = LabelMarginalLoss(penalty, temperature=10.0)
    val = loss(z, label)
    val.backward()
    assert val.dtype == torch.float32 and torch.isfinite(val)
    assert z.grad.dtype == dtype and torch.isfinite(z.grad.float()).all()
    ref = loss(z.detach().float(), label)
    torch.testing.assert_close(val, ref)


@pytest.mark.parametrize("loss", [LabelMarginalLoss("kl"), CEMarginalLoss("l1")], ids=repr)
def test_autocast_leaves_the_marginal_losses_in_float32(loss):
    """Under CPU autocast (bfloat16 matmuls) the class sums still run in float32: value and
    gradient equal those without autocast."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 5, 8, 8, generator=g).requires_grad_()
    label = torch.randint(0, 5, (2, 8, 8), generator=g)
    ref = loss(z, label)
    (ref_grad,) = torch.autograd.grad(ref, z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(z, label)
    (grad,) = torch.autograd.grad(got, z)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0)


def test_autocast_state_on_torch_without_the_device_argument(monkeypatch):
    """torch < 2.4 has ``is_autocast_enabled()`` (CUDA) and ``is_autocast_cpu_enabled()``."""
    from mmseg_marginal.losses.inputs import autocast_enabled, full_precision

    state = {"cuda": False, "cpu": True}
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda: state["cuda"])
    monkeypatch.setattr(torch, "is_autocast_cpu_enabled", lambda: state["cpu"], raising=False)
    assert autocast_enabled("cpu") is True and autocast_enabled("cuda") is False
    state.update(cuda=True, cpu=False)
    assert autocast_enabled("cpu") is False and autocast_enabled("cuda") is True
    assert autocast_enabled("xpu") is True  # unknown on such a torch: leave autocast anyway
    assert isinstance(full_precision("cpu"), contextlib.nullcontext)
    assert isinstance(full_precision("cuda"), torch.autocast)


def test_kl_finite_when_predicted_proportion_is_zero():
    z = torch.zeros(1, 3, 4, 4)
    z[:, 2] = -1e4  # softmax(10 z)_2 underflows to exactly 0
    z.requires_grad_()
    label = torch.randint(0, 3, (1, 4, 4), generator=torch.Generator().manual_seed(0))
    label[0, 0, 0] = 2
    val = LabelMarginalLoss("kl")(z, label)
    val.backward()
    counts = torch.bincount(label.flatten(), minlength=3).double()
    y = counts / 16
    p = torch.tensor([8.0, 8.0, 1e-10], dtype=torch.float64) / 16
    expected = (torch.xlogy(y, y) - torch.xlogy(y, p)).sum()
    assert val.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.isfinite(z.grad).all()


def test_bad_inputs():
    z, label = random_batch(k=3, present=2)
    loss = LabelMarginalLoss()
    bad = label.clone()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match="label value 7"):
        loss(z, bad)
    bad[0, 0, 0] = -3
    with pytest.raises(ValueError, match="-3"):
        loss(z, bad)
    with pytest.raises(ValueError, match="spatial size"):
        loss(z, label[:, :-1])
    with pytest.raises(NotImplementedError, match="weight"):
        loss(z, label, weight=torch.ones_like(label, dtype=torch.float))
    with pytest.raises(ValueError, match="1 logit channel"):
        LabelMarginalLoss(use_sigmoid=True)(z, label)
    with pytest.raises(ValueError, match="use_sigmoid"):
        loss(z[:, :1], label.clamp(max=0))
    binary_label = label.clone()
    binary_label[0, 0, 0] = 2
    with pytest.raises(ValueError, match="label value 2"):
        LabelMarginalLoss(use_sigmoid=True)(z[:, :1], binary_label)


def test_bad_configs():
    with pytest.raises(ValueError, match="needs prior"):
        LabelMarginalLoss(target="prior")
    with pytest.raises(ValueError, match="only used with target='prior'"):
        LabelMarginalLoss(target="image", prior=[0.5, 0.5])
    with pytest.raises(ValueError, match="pooling must be one of"):
        LabelMarginalLoss(pooling="dataset")
    with pytest.raises(ValueError, match="sum to 1"):
        LabelMarginalLoss(prior=[0.5, 0.6])
    with pytest.raises(ValueError, match="non-negative"):
        LabelMarginalLoss(prior=[1.5, -0.5])
    with pytest.raises(ValueError, match="penalty"):
        LabelMarginalLoss(penalty="l2")
    with pytest.raises(ValueError, match="target"):
        LabelMarginalLoss(target="dataset")
    z, label = random_batch(k=3, present=2)
    with pytest.raises(ValueError, match="prior has 2 entries"):
        LabelMarginalLoss(prior=[0.5, 0.5])(z, label)


def test_last_stats_need_no_second_pass_over_the_logits():
    """The argmax proportions of ``last_stats`` come out of the one forward kernel call."""
    from mmseg_marginal.losses import CEMarginalLoss

    z, label = random_batch()
    valid = label.flatten(1) != 255
    n = valid.sum(1, keepdim=True).double()

    def props(lab):
        counts = [torch.bincount(row[v], minlength=z.shape[1]) for row, v in zip(lab, valid)]
        return (torch.stack(counts).double() + 1e-10) / (n + 1e-10)

    prop_mae = (props(label.flatten(1)) - props(z.argmax(1).flatten(1))).abs().mean()
    for loss in (LabelMarginalLoss(compile=False), CEMarginalLoss(compile=False)):
        loss.enable_stats()
        loss(z.requires_grad_(), label)
        # one kernel call, no backward
        assert loss.kernels.stats() == (0, 1, False)
        assert loss.last_stats._fields == ("marginal", "prop_mae")
        assert all(not v.requires_grad for v in loss.last_stats)
        # the proportions of the argmax prediction, from that call
        torch.testing.assert_close(loss.last_stats.prop_mae, prop_mae.float())


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("pooling", ["image", "batch"])
@pytest.mark.parametrize("with_prior", [False, True])
@pytest.mark.parametrize(
    "penalty,reduction", [("l1", "mean"), ("l1", "sum"), ("kl", "sum"), ("kl", "mean")]
)
def test_written_out_penalty_gradient_equals_autograd(
    binary, pooling, with_prior, penalty, reduction
):
    """The fused loss's dR/dpsum (marginal_term_grad) against autograd through the same R."""
    from mmseg_marginal.losses.marginal import MarginalObjective, marginal_term, marginal_term_grad

    g = torch.Generator().manual_seed(3)
    k = 2 if binary else 4
    n_valid = torch.tensor([7, 0, 12])  # the middle image has no valid pixel
    counts = torch.stack(
        [
            torch.multinomial(torch.ones(k), int(n), True, generator=g).bincount(minlength=k)
            if n
            else torch.zeros(k, dtype=torch.long)
            for n in n_valid
        ]
    )
    share = torch.rand(3, k, generator=g, dtype=torch.float64)
    psum = (share / share.sum(1, keepdim=True) * n_valid.unsqueeze(1)).requires_grad_()
    prior = torch.tensor([0.3, 0.7] if binary else [0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    objective = MarginalObjective(
        penalty=penalty,
        class_reduction=reduction,
        pooling=pooling,
        prior=prior if with_prior else None,
        weight=1.0,
        ce_divisor=None,
        binary=binary,
    )
    r, parts = marginal_term(psum, counts, n_valid, objective)
    (expected,) = torch.autograd.grad(r, psum)
    got = marginal_term_grad(tuple(p.detach() for p in parts), objective, batch_size=3)
    assert got.shape == psum.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    assert expected.abs().sum() > 0  # a case where R has a gradient at all
