"""The README's statements about every loss: pixel weights in ``CEMarginalLoss`` weight its CE
term only; 3-D ``(B, C, D, H, W)`` logits; any ``ignore_index`` (None, non-default values);
float16/bfloat16 logits computed in float32."""

import pytest
import torch
import torch.nn.functional as F
from loss_cases import random_batch
from mmseg.models.losses import CrossEntropyLoss

from mmseg_marginal.losses import (
    CEMarginalLoss,
    ClasswiseDiceLoss,
    DiceBiasLoss,
    GeneralizedDiceLoss,
    LabelMarginalLoss,
    SoftmaxFocalLoss,
)

LOSSES = {
    "ce_marginal": lambda: CEMarginalLoss("kl", marginal_weight=0.3, temperature=2.0),
    "marginal": lambda: LabelMarginalLoss("l1", temperature=2.0),
    "dice": lambda: ClasswiseDiceLoss(),
    "log_dice": lambda: ClasswiseDiceLoss(log=True),
    "gdice": lambda: GeneralizedDiceLoss(),
    "focal": lambda: SoftmaxFocalLoss(),
    "dice_bias": lambda: DiceBiasLoss(),
}


@pytest.mark.parametrize("penalty, lam", [("l1", 1.0), ("kl", 0.1)])
def test_pixel_weight_weights_only_the_ce_term(penalty, lam):
    """``loss(weight=w) = loss_weight * (CE_w + lam * R)``: CE_w is mmseg's pixel-weighted
    ``CrossEntropyLoss(avg_non_ignore=True)``, R the unweighted penalty."""
    z, label = random_batch(b=3, k=4, h=5, w=6)
    g = torch.Generator().manual_seed(3)
    weight = torch.rand(label.shape, dtype=torch.float64, generator=g) * 3
    z1 = z.clone().requires_grad_()
    got = CEMarginalLoss(penalty, marginal_weight=lam, temperature=2.0, loss_weight=0.7)(
        z1, label, weight=weight
    )
    z2 = z.clone().requires_grad_()
    ce_w = CrossEntropyLoss(avg_non_ignore=True)(z2, label, weight=weight, ignore_index=255)
    r = LabelMarginalLoss(penalty, temperature=2.0)(z2, label)
    want = 0.7 * (ce_w + lam * r)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-10, atol=1e-12)
    # the weight matters (it is not dropped) and R is not weighted
    unweighted = CEMarginalLoss(penalty, marginal_weight=lam, temperature=2.0, loss_weight=0.7)
    assert abs(unweighted(z, label).item() - got.item()) > 1e-3
    r_weighted = LabelMarginalLoss(penalty, temperature=2.0)
    with pytest.raises(NotImplementedError):
        r_weighted(z, label, weight=weight)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_volumetric_logits_equal_the_flattened_image(name):
    """``(B, K, D, H, W)`` gives the value and gradient of the same voxels as one
    ``(B, K, 1, D*H*W)`` image, and differs from treating the slices as a batch."""
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 4, 3, 4, 5, generator=g, dtype=torch.float64) * 2
    label = torch.randint(0, 3, (2, 3, 4, 5), generator=g)
    label[:, 0, 0] = 255
    loss = LOSSES[name]()
    z3 = z.clone().requires_grad_()
    z2 = z.clone().reshape(2, 4, 1, 60).requires_grad_()
    v3 = loss(z3, label)
    v2 = loss(z2, label.reshape(2, 1, 60))
    torch.testing.assert_close(v3, v2, rtol=1e-12, atol=1e-12)
    v3.backward()
    v2.backward()
    torch.testing.assert_close(z3.grad.reshape(2, 4, 1, 60), z2.grad, rtol=1e-10, atol=1e-12)
    assert z3.grad.abs().max() > 0
    slices = loss(z.permute(0, 2, 1, 3, 4).reshape(6, 4, 4, 5), label.reshape(6, 4, 5))
    if name not in ("focal",):  # focal is a per-pixel mean: slicing does not change it
        assert abs(slices.item() - v3.item()) > 1e-6


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_any_ignore_index(name):
    """A non-default ``ignore_index`` (here 3, also a valid class number elsewhere) ignores the
    same pixels as 255; ``ignore_index=None`` ignores none, and then 255 is a bad label."""
    z, label = random_batch(b=2, k=5, h=5, w=6, present=3, seed=5)
    loss = LOSSES[name]()
    ref = loss(z, label, ignore_index=255)
    relabelled = torch.where(label == 255, torch.full_like(label, 4), label)
    torch.testing.assert_close(
        loss(z, relabelled, ignore_index=4), ref, rtol=1e-12, atol=1e-12
    )  # fmt: skip
    # ignore_index=None: every pixel counts, equal to an ignore value no pixel has
    full = torch.where(label == 255, torch.zeros_like(label), label)
    none = loss(z, full, ignore_index=None)
    torch.testing.assert_close(none, loss(z, full, ignore_index=255), rtol=1e-12, atol=1e-12)
    assert abs(none.item() - ref.item()) > 1e-6  # the ignored pixels were counted
    with pytest.raises(ValueError, match="label value 255"):
        loss(z, label, ignore_index=None)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_half_precision_is_computed_in_float32(name, dtype):
    """The value and gradient for half-precision logits are those of the same logits in
    float32 (not merely finite)."""
    g = torch.Generator().manual_seed(6)
    zh = ((torch.rand(2, 4, 8, 8, generator=g) * 2 - 1) * 30).to(dtype)
    label = torch.randint(0, 4, (2, 8, 8), generator=g)
    label[:, :2] = 255
    loss = LOSSES[name]()
    a = zh.clone().requires_grad_()
    b = zh.float().requires_grad_()
    va, vb = loss(a, label), loss(b, label)
    torch.testing.assert_close(va.float(), vb.detach(), rtol=1e-6, atol=1e-6)
    va.backward()
    vb.backward()
    assert a.grad.dtype == dtype
    torch.testing.assert_close(a.grad, b.grad.to(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_ce_value(dtype):
    """CE in half precision, against torch's float64 CE of the same logits: large logits
    (|z| up to 50) where a half-precision softmax would overflow or underflow."""
    g = torch.Generator().manual_seed(7)
    zh = ((torch.rand(2, 5, 8, 8, generator=g) * 2 - 1) * 50).to(dtype)
    label = torch.randint(0, 5, (2, 8, 8), generator=g)
    label[0, 0] = 255
    got = CEMarginalLoss(marginal_weight=0.0)(zh, label)
    want = F.cross_entropy(zh.double(), label, ignore_index=255)
    assert want.item() > 1.0
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
