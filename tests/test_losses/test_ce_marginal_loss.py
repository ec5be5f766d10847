"""The combined CE + lambda * R loss: equal to its parts, analytic gradient."""

import pytest
import torch
import torch.nn.functional as F
from loss_cases import random_batch, tiny_batch
from mmseg.models.losses import CrossEntropyLoss

from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss


def test_hand_value():
    z, label = tiny_batch()
    # image 0: CE over pixels with p_y = .5, .25, .25; R (L1, mean) = 1/6
    ce = -(torch.log(torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))).mean()
    val = CEMarginalLoss("l1", marginal_weight=2.0, temperature=1.0, loss_weight=0.5)(
        z[:1], label[:1]
    )
    assert val.item() == pytest.approx(0.5 * (ce.item() + 2.0 / 6), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(penalty="l1", marginal_weight=1.0),
        dict(penalty="kl", marginal_weight=0.1),
        dict(penalty="l1", marginal_weight=0.5, pooling="batch", temperature=3.0),
        dict(penalty="kl", marginal_weight=1.0, prior=[0.3, 0.3, 0.2, 0.1, 0.1]),
        dict(penalty="l1", marginal_weight=1.0, class_reduction="sum"),
    ],
)
def test_equals_mmseg_ce_plus_regularizer(kwargs):
    z, label = random_batch(b=3, h=6, w=7)
    z = z.float()
    z1 = z.clone().requires_grad_()
    z2 = z.clone().requires_grad_()
    combined = CEMarginalLoss(loss_weight=0.7, **kwargs)(z1, label, ignore_index=255)
    lam = kwargs.pop("marginal_weight")
    reg = LabelMarginalLoss(**kwargs)
    ce = CrossEntropyLoss(avg_non_ignore=True)
    separate = 0.7 * (ce(z2, label, ignore_index=255) + lam * reg(z2, label, ignore_index=255))
    torch.testing.assert_close(combined, separate)
    combined.backward()
    separate.backward()
    torch.testing.assert_close(z1.grad, z2.grad)


def test_pixel_weight_and_class_weight_match_reference():
    z, label = random_batch(b=2, k=4, h=5, w=5, present=3)
    g = torch.Generator().manual_seed(3)
    weight = torch.rand(label.shape, generator=g, dtype=torch.float64)
    # pixel weight only: exactly mmseg's CrossEntropyLoss
    z1 = z.clone().requires_grad_()
    got = CEMarginalLoss(marginal_weight=0.0)(z1, label, weight=weight)
    ref = CrossEntropyLoss(avg_non_ignore=True)(z, label, weight=weight, ignore_index=255)
    torch.testing.assert_close(got, ref)
    # class weights: weighted mean as F.cross_entropy; pixel weights on top
    cw = [0.5, 2.0, 1.0, 3.0]
    got = CEMarginalLoss(marginal_weight=0.0, class_weight=cw)(z, label)
    ref = F.cross_entropy(z, label, weight=torch.tensor(cw, dtype=z.dtype), ignore_index=255)
    torch.testing.assert_close(got, ref)
    got = CEMarginalLoss(marginal_weight=0.0, class_weight=cw)(z, label, weight=weight)
    per_px = F.cross_entropy(
        z, label, weight=torch.tensor(cw, dtype=z.dtype), ignore_index=255, reduction="none"
    )
    valid = label != 255
    denom = torch.tensor(cw, dtype=z.dtype)[label.clamp(max=3)][valid].sum()
    torch.testing.assert_close(got, (per_px * weight).sum() / denom)
    # avg_non_ignore=False divides by every pixel
    got = CEMarginalLoss(marginal_weight=0.0, avg_non_ignore=False)(z, label)
    ref = F.cross_entropy(z, label, ignore_index=255, reduction="sum") / label.numel()
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
@pytest.mark.parametrize("target", ["image", "batch"])
def test_gradcheck(penalty, target):
    z, label = random_batch(k=4)
    g = torch.Generator().manual_seed(0)
    weight = torch.rand(label.shape, dtype=torch.float64, generator=g)
    loss = CEMarginalLoss(penalty, temperature=2.0, pooling=target, class_weight=[1, 2, 0.5, 1])
    assert torch.autograd.gradcheck(lambda x: loss(x, label, weight=weight), (z.requires_grad_(),))


def test_3d_and_half_precision():
    z, label = random_batch(b=2, k=4, h=6, w=4)
    loss = CEMarginalLoss("kl", marginal_weight=0.1)
    torch.testing.assert_close(
        loss(z.reshape(2, 4, 2, 3, 4), label.reshape(2, 2, 3, 4)), loss(z, label)
    )
    for dtype in (torch.float16, torch.bfloat16):
        zh = ((torch.rand(2, 4, 8, 8) * 2 - 1) * 50).to(dtype).requires_grad_()
        lab = torch.randint(0, 4, (2, 8, 8))
        val = CEMarginalLoss(temperature=10.0)(zh, lab)
        val.backward()
        assert torch.isfinite(val) and torch.isfinite(zh.grad.float()).all()
        assert zh.grad.dtype == dtype


def test_all_ignored_and_bad_labels():
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    label = torch.full((2, 4, 4), 255)
    for penalty in ("l1", "kl"):
        val = CEMarginalLoss(penalty)(z, label)
        (grad,) = torch.autograd.grad(val, z)
        assert val.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))
    label[0, 0, 0] = 3
    with pytest.raises(ValueError, match="label value 3"):
        CEMarginalLoss()(z, label)
    with pytest.raises(ValueError, match="spatial size"):
        CEMarginalLoss()(z, label[:, 1:])
    with pytest.raises(ValueError, match="class_weight has 2"):
        CEMarginalLoss(class_weight=[1.0, 1.0])(z, label.clamp(max=2))
    with pytest.raises(ValueError, match="at least 2 class channels"):
        CEMarginalLoss()(z[:, :1], label.clamp(max=0))


def test_last_stats_from_the_same_forward():
    z, label = tiny_batch()
    loss = CEMarginalLoss("l1", temperature=1.0)
    loss(z, label)
    assert loss.last_stats is None  # not asked for
    loss.enable_stats()
    loss(z, label)
    assert loss.last_stats.marginal.item() == pytest.approx((1 / 6 + 0.5) / 2, rel=1e-6)
    assert loss.last_stats.prop_mae.item() == pytest.approx(0.5, rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("compile_mode", [False, True])
def test_cuda_matches_cpu(compile_mode):
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 19, 64, 96, generator=g) * 4
    label = torch.randint(0, 19, (2, 64, 96), generator=g)
    label[:, :5] = 255
    results = []
    for device, mode in (("cpu", False), ("cuda", compile_mode)):
        zz = z.clone().to(device).requires_grad_()
        loss = CEMarginalLoss("kl", marginal_weight=0.1, compile=mode)
        val = loss(zz, label.to(device))
        val.backward()
        results.append((val.cpu(), zz.grad.cpu(), loss.last_stats.prop_mae.cpu()))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(results[1][2], results[0][2])
