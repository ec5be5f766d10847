"""Dice, Generalized Dice, DiceBias and focal baselines: hand values, gradients, bad input."""

import math

import pytest
import torch
from loss_cases import random_batch, tiny_batch, tiny_binary
from mmseg.models.losses import CrossEntropyLoss

from mmseg_marginal.losses import (
    ClasswiseDiceLoss,
    DiceBiasLoss,
    GeneralizedDiceLoss,
    SoftmaxFocalLoss,
)

D = 1e-6  # default smooth


def dice(i, s, g):
    return (2 * i + D) / (s + g + D)


# image 0 of tiny_batch: I = [.75, .25], S = [1.5, 1.5], G = [2, 1];
# image 1: only class 1 present, I = S = 2, G = 4.
D00, D01, D11 = dice(0.75, 1.5, 2), dice(0.25, 1.5, 1), dice(2, 2, 4)


@pytest.mark.parametrize(
    "log,expected",
    [
        (False, (((1 - D00) + (1 - D01)) / 2 + (1 - D11)) / 2),
        (True, ((-math.log(D00) - math.log(D01)) / 2 - math.log(D11)) / 2),
    ],
)
def test_classwise_dice_hand_values(log, expected):
    z, label = tiny_batch()
    val = ClasswiseDiceLoss(log=log, loss_weight=3.0)(z, label)
    assert val.item() == pytest.approx(3.0 * expected, rel=1e-9)


def test_binary_foreground_dice_hand_value():
    z, label = tiny_binary()
    val = ClasswiseDiceLoss(use_sigmoid=True)(z, label)
    assert val.item() == pytest.approx(1 - dice(0.75, 1.5, 2), rel=1e-9)
    # an image without foreground contributes 0
    assert ClasswiseDiceLoss(use_sigmoid=True)(z, torch.zeros_like(label)).item() == 0.0


def test_generalized_dice_hand_value():
    z, label = tiny_batch()
    num0 = 2 * (0.75 / 4 + 0.25 / 1)
    den0 = 3.5 / 4 + 2.5 / 1
    num1, den1 = 2 * 2 / 16, 6 / 16
    expected = ((1 - num0 / den0) + (1 - num1 / den1)) / 2
    assert GeneralizedDiceLoss()(z, label).item() == pytest.approx(expected, rel=1e-9)


def test_dice_bias_hand_value():
    z, label = tiny_batch()
    # image 0: p_hat = [.5, .5], y_hat = [2/3, 1/3]; image 1: only class 1, log(.5 + 1)
    expected = (math.log(0.5 + 2 / 3) + math.log(0.5 + 1 / 3) + math.log(1.5)) / 2
    assert DiceBiasLoss()(z, label).item() == pytest.approx(expected, rel=1e-8)


def test_focal_hand_value_and_gamma_zero_is_mmseg_ce():
    z, label = tiny_batch()
    p = torch.tensor([0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5], dtype=torch.float64)
    expected = ((1 - p) ** 2 * -torch.log(p)).mean()
    assert SoftmaxFocalLoss()(z, label).item() == pytest.approx(expected.item(), rel=1e-6)
    zr, lr = random_batch()
    weight = torch.rand(lr.shape, dtype=torch.float64)
    ce = CrossEntropyLoss(avg_non_ignore=True)(zr, lr, weight=weight, ignore_index=255)
    torch.testing.assert_close(SoftmaxFocalLoss(gamma=0.0)(zr, lr, weight=weight), ce)


def test_log_dice_bounds_linear_dice():
    z, label = random_batch(b=4, seed=5)
    for b in range(4):
        lin = ClasswiseDiceLoss()(z[b : b + 1], label[b : b + 1])
        log = ClasswiseDiceLoss(log=True)(z[b : b + 1], label[b : b + 1])
        assert log.item() >= lin.item() > 0


LOSSES = [
    ClasswiseDiceLoss(),
    ClasswiseDiceLoss(log=True),
    GeneralizedDiceLoss(),
    DiceBiasLoss(),
    DiceBiasLoss(temperature=5.0),
    SoftmaxFocalLoss(),
    SoftmaxFocalLoss(gamma=0.5),
]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda m: f"{type(m).__name__}")
def test_gradcheck_with_ignored_pixels_and_absent_classes(loss):
    z, label = random_batch()
    assert torch.autograd.gradcheck(lambda x: loss(x, label), (z.requires_grad_(),))


@pytest.mark.parametrize("log", [False, True])
def test_gradcheck_binary_and_pixel_weight(log):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)
    label = torch.randint(0, 2, (2, 4, 4), generator=g)
    label[:, 0] = 255
    weight = torch.rand(2, 4, 4, generator=g, dtype=torch.float64)
    loss = ClasswiseDiceLoss(log=log, use_sigmoid=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, label, weight), (z.requires_grad_(),))
    zm, lm = random_batch()
    loss = ClasswiseDiceLoss(log=log)
    weight = torch.rand(lm.shape, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: loss(x, lm, weight), (zm.requires_grad_(),))


@pytest.mark.parametrize("loss", LOSSES, ids=lambda m: f"{type(m).__name__}")
def test_all_ignored_is_zero_and_bad_input(loss):
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    label = torch.full((2, 4, 4), 255)
    val = loss(z, label)
    (grad,) = torch.autograd.grad(val, z)
    assert val.item() == 0.0 and torch.equal(grad, torch.zeros_like(grad))
    label[1, 2, 2] = 9
    with pytest.raises(ValueError, match="label value 9"):
        loss(z, label)
    with pytest.raises(ValueError, match="spatial size"):
        loss(z, label[..., :3])


@pytest.mark.parametrize("loss", LOSSES, ids=lambda m: f"{type(m).__name__}")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_large_logits_finite(loss, dtype):
    g = torch.Generator().manual_seed(6)
    z = ((torch.rand(2, 4, 8, 8, generator=g) * 2 - 1) * 50).to(dtype).requires_grad_()
    label = torch.randint(0, 3, (2, 8, 8), generator=g)
    val = loss(z, label)
    val.backward()
    assert torch.isfinite(val) and torch.isfinite(z.grad.float()).all()
    torch.testing.assert_close(val, loss(z.detach().float(), label))


def test_log_dice_finite_when_intersection_underflows():
    z = torch.zeros(1, 2, 4, 4)
    z[:, 1] = 200.0  # p(class 0) = exp(-200) underflows to 0 in float32
    z.requires_grad_()
    label = torch.zeros(1, 4, 4, dtype=torch.long)
    val = ClasswiseDiceLoss(log=True)(z, label)
    val.backward()
    assert torch.isfinite(val) and val.item() > 10
    assert torch.isfinite(z.grad).all()


def test_weight_and_config_errors():
    z, label = random_batch()
    with pytest.raises(NotImplementedError, match="weight"):
        DiceBiasLoss()(z, label, weight=torch.ones(label.shape))
    with pytest.raises(ValueError, match="smooth"):
        ClasswiseDiceLoss(smooth=0.0)
    with pytest.raises(ValueError, match="gamma"):
        SoftmaxFocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="1 logit channel"):
        ClasswiseDiceLoss(use_sigmoid=True)(z, label)


@pytest.mark.parametrize("loss", LOSSES[:3], ids=lambda m: f"{type(m).__name__}")
def test_autocast_does_not_lower_the_precision_of_the_sums(loss):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, 4, 16, 16, generator=g)
    label = torch.randint(0, 4, (2, 16, 16), generator=g)
    ref = loss(z, label)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss(z, label)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref)
