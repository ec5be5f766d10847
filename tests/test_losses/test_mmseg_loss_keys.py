"""The marginal losses take the keys of mmseg's CrossEntropyLoss dict; the binary CE + lambda*R.

A ``dict(type='CEMarginalLoss', ...)`` merged into a stock head's
``dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)`` keeps those keys, so both
modules must accept every key of mmseg's ``CrossEntropyLoss`` and act on it or refuse it.
"""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from loss_cases import random_batch, tiny_binary
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_marginal  # noqa: F401  (registers the losses)
from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss

EPS32 = torch.finfo(torch.float32).eps


def _binary_batch(b: int = 4, h: int = 5, w: int = 6, seed: int = 0, dtype=torch.float64):
    """One-channel logits ``(b, 1, h, w)`` and labels in {0, 1, 255} (``b >= 4``): about 20%
    ignored pixels; image 1 has no foreground, image 2 one valid pixel, image 3 none."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, 1, h, w, generator=g, dtype=dtype) * 2
    label = torch.randint(0, 2, (b, h, w), generator=g)
    label[torch.rand(b, h, w, generator=g) < 0.2] = 255
    label[1][label[1] == 1] = 0
    label[2:4] = 255
    label[2, 0, 0] = 1
    return z, label


def _reference_binary(z, label, penalty, lam, tau, pos_weight=1.0, pix_w=None, avg_non_ignore=True):
    """BCE + lam * R from the definitions, in float64, one image at a time."""
    z = z.double()[:, 0]
    valid = label != 255
    y = torch.where(valid, label, 0).double()
    sig = torch.sigmoid(z)
    bce = -(pos_weight * y * torch.log(sig) + (1 - y) * torch.log(1 - sig))
    # pixel weights are float32, as mmseg's ``weight.float()``
    a = valid.double() * (1.0 if pix_w is None else pix_w.float().double())
    denom = valid.sum().double() + EPS32 if avg_non_ignore else label.numel()
    ce = (bce * a).sum() / denom
    r = []
    for b in range(z.shape[0]):
        vb = valid[b]
        n = vb.sum().double()
        if n == 0:
            r.append(torch.zeros((), dtype=torch.float64))
            continue
        # both classes' proportions are (sum + 1e-10) / (N + 1e-10)
        yb = ((y[b][vb]).sum() + 1e-10) / (n + 1e-10)
        yb0 = ((1 - y[b][vb]).sum() + 1e-10) / (n + 1e-10)
        pb = (torch.sigmoid(tau * z[b][vb]).sum() + 1e-10) / (n + 1e-10)
        pb0 = (torch.sigmoid(-tau * z[b][vb]).sum() + 1e-10) / (n + 1e-10)
        if penalty == "l1":
            r.append((yb - pb).abs())
        else:
            r.append(yb * torch.log(yb / pb) + yb0 * torch.log(yb0 / pb0))
    return ce + lam * torch.stack(r).mean()


def test_every_key_of_mmseg_cross_entropy_is_a_parameter():
    keys = set(inspect.signature(CrossEntropyLoss.__init__).parameters) - {"self"}
    assert keys == {
        "use_sigmoid",
        "use_mask",
        "reduction",
        "class_weight",
        "loss_weight",
        "loss_name",
        "avg_non_ignore",
    }
    for cls in (CEMarginalLoss, LabelMarginalLoss):
        assert keys <= set(inspect.signature(cls.__init__).parameters), cls


def test_dict_merged_into_a_stock_head_loss_builds_and_keeps_its_keys():
    z, label = random_batch(b=2, k=4, h=5, w=6, present=3)
    z = z.float()
    stock = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.4)
    merged = MODELS.build({**stock, **dict(type="CEMarginalLoss", penalty="kl")})
    assert isinstance(merged, CEMarginalLoss)
    assert (merged.loss_weight, merged.use_sigmoid, merged.loss_name) == (
        0.4,
        False,
        "loss_ce_marginal",
    )
    torch.testing.assert_close(merged(z, label), 0.4 * CEMarginalLoss("kl")(z, label))
    # every key of mmseg's CrossEntropyLoss at a value both modules honour
    full = dict(
        use_sigmoid=False,
        use_mask=False,
        reduction="mean",
        class_weight=None,
        loss_weight=1.0,
        loss_name="loss_x",
        avg_non_ignore=True,
    )
    torch.testing.assert_close(CEMarginalLoss(**full)(z, label), CEMarginalLoss()(z, label))
    torch.testing.assert_close(LabelMarginalLoss(**full)(z, label), LabelMarginalLoss()(z, label))
    assert LabelMarginalLoss(**full).loss_name == "loss_x"
    # class_weight and avg_non_ignore=False act on the CE term as in mmseg / torch (a stock
    # head with class weights keeps them)
    cw = [0.5, 1.0, 2.0, 1.5]
    got = CEMarginalLoss(class_weight=cw, marginal_weight=0.0)(z, label)
    ref = F.cross_entropy(z, label, weight=torch.tensor(cw), ignore_index=255)
    torch.testing.assert_close(got, ref)
    got = CEMarginalLoss(avg_non_ignore=False, marginal_weight=0.0)(z, label)
    ref = CrossEntropyLoss(avg_non_ignore=False)(z, label, ignore_index=255)
    torch.testing.assert_close(got, ref)


def test_binary_hand_value():
    # sigmoid(z) = .5, .75, .25 on the valid pixels with labels 1, 0, 1: the BCE terms are
    # log 2, log 4, log 4; foreground proportion 2/3, predicted (tau = 1) 1/2
    z, label = tiny_binary()
    loss = CEMarginalLoss(
        "l1", marginal_weight=2.0, temperature=1.0, loss_weight=0.5, use_sigmoid=True
    )
    bce = 5 * math.log(2) / 3
    assert loss(z, label).item() == pytest.approx(0.5 * (bce + 2 / 6), rel=1e-7)
    kl = (2 / 3) * math.log(4 / 3) + (1 / 3) * math.log(2 / 3)
    loss = CEMarginalLoss("kl", marginal_weight=1.0, temperature=1.0, use_sigmoid=True)
    assert loss(z, label).item() == pytest.approx(bce + kl, rel=1e-7)
    # class_weight = mmseg's pos_weight: the two foreground terms times 3
    loss = CEMarginalLoss(marginal_weight=0.0, class_weight=[3.0], use_sigmoid=True)
    assert loss(z, label).item() == pytest.approx(11 * math.log(2) / 3, rel=1e-7)
    # avg_non_ignore=False: divided by all 4 pixels
    loss = CEMarginalLoss(marginal_weight=0.0, avg_non_ignore=False, use_sigmoid=True)
    assert loss(z, label).item() == pytest.approx(5 * math.log(2) / 4, rel=1e-7)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
@pytest.mark.parametrize("avg_non_ignore", [True, False])
@pytest.mark.parametrize("with_weights", [False, True])
def test_binary_equals_mmseg_bce_plus_binary_regularizer(penalty, avg_non_ignore, with_weights):
    z, label = _binary_batch(seed=1, dtype=torch.float32)
    g = torch.Generator().manual_seed(2)
    pix_w = torch.rand(label.shape, generator=g) if with_weights else None
    cw = [2.5] if with_weights else None
    z1 = z.clone().requires_grad_()
    z2 = z.clone().requires_grad_()
    got = CEMarginalLoss(
        penalty,
        marginal_weight=0.3,
        class_weight=cw,
        avg_non_ignore=avg_non_ignore,
        loss_weight=0.7,
        use_sigmoid=True,
    )(z1, label, weight=pix_w, ignore_index=255)
    bce = CrossEntropyLoss(use_sigmoid=True, class_weight=cw, avg_non_ignore=avg_non_ignore)
    reg = LabelMarginalLoss(penalty, use_sigmoid=True)
    ref = 0.7 * (bce(z2, label, weight=pix_w, ignore_index=255) + 0.3 * reg(z2, label))
    torch.testing.assert_close(got, ref)
    got.backward()
    ref.backward()
    torch.testing.assert_close(z1.grad, z2.grad)
    assert bool((z1.grad[label.unsqueeze(1) == 255] == 0).all())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(penalty="l1", marginal_weight=1.0, temperature=10.0),
        dict(penalty="kl", marginal_weight=0.1, temperature=3.0, class_weight=[0.4]),
        dict(penalty="l1", marginal_weight=0.5, temperature=2.0, avg_non_ignore=False),
    ],
)
def test_binary_float64_hand_formula(kwargs):
    z, label = _binary_batch(seed=3)
    pix_w = torch.rand(label.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    got = CEMarginalLoss(use_sigmoid=True, **kwargs)(z, label, weight=pix_w)
    ref = _reference_binary(
        z,
        label,
        kwargs["penalty"],
        kwargs["marginal_weight"],
        kwargs["temperature"],
        pos_weight=kwargs.get("class_weight", [1.0])[0],
        pix_w=pix_w,
        avg_non_ignore=kwargs.get("avg_non_ignore", True),
    )
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("penalty", ["l1", "kl"])
@pytest.mark.parametrize("target", ["image", "batch"])
def test_binary_gradcheck(penalty, target):
    z, label = _binary_batch(h=3, w=4, seed=6)
    pix_w = torch.rand(label.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    loss = CEMarginalLoss(
        penalty,
        marginal_weight=0.7,
        temperature=2.0,
        target=target,
        class_weight=[1.7],
        use_sigmoid=True,
    )
    z = z.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: loss(x, label, weight=pix_w), (z,))


def test_binary_in_an_mmseg_head_and_last_stats():
    g = torch.Generator().manual_seed(8)
    feats = (torch.randn(2, 8, 8, 8, generator=g),)
    samples = []
    for _ in range(2):
        s = SegDataSample()
        lab = torch.randint(0, 2, (1, 16, 16), generator=g)
        lab[:, :2] = 255
        s.gt_sem_seg = PixelData(data=lab)
        s.set_metainfo(dict(img_shape=(16, 16), pad_shape=(16, 16)))
        samples.append(s)
    torch.manual_seed(0)
    head = FCNHead(
        in_channels=8,
        channels=8,
        num_convs=1,
        num_classes=2,
        out_channels=1,
        dropout_ratio=0.0,
        loss_decode=dict(type="CEMarginalLoss", use_sigmoid=True, marginal_weight=0.5),
    )
    head.loss_decode.enable_stats()
    losses = head.loss(feats, samples, train_cfg={})
    logits = torch.nn.functional.interpolate(head.forward(feats), (16, 16), mode="bilinear")
    label = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    torch.testing.assert_close(
        losses["loss_ce_marginal"],
        CEMarginalLoss(use_sigmoid=True, marginal_weight=0.5)(logits, label),
    )
    losses["loss_ce_marginal"].backward()
    assert torch.isfinite(head.conv_seg.weight.grad).all()
    assert head.loss_decode.last_stats._fields == ("marginal", "prop_mae")
    # prop_mae: the argmax prediction of a sigmoid logit is foreground where z > 0
    valid = label != 255
    fg_true = ((label == 1) & valid).sum((1, 2)).double() / valid.sum((1, 2))
    fg_pred = ((logits[:, 0] > 0) & valid).sum((1, 2)).double() / valid.sum((1, 2))
    expected = (fg_true - fg_pred).abs().mean()  # |dy| is the same for both classes
    assert head.loss_decode.last_stats.prop_mae.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ohem_with_and_without_thresh_trains_the_combined_loss():
    g = torch.Generator().manual_seed(9)
    feats = (torch.randn(2, 8, 8, 8, generator=g),)
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 4, (1, 16, 16), generator=g))
        s.set_metainfo(dict(img_shape=(16, 16), pad_shape=(16, 16)))
        samples.append(s)

    def head(sampler):
        return FCNHead(
            in_channels=8,
            channels=8,
            num_convs=1,
            num_classes=4,
            sampler=sampler,
            loss_decode=dict(type="CEMarginalLoss"),
        )

    for thresh in (None, 0.7):
        h = head(dict(type="OHEMPixelSampler", thresh=thresh, min_kept=10))
        losses = h.loss(feats, samples, train_cfg={})
        assert torch.isfinite(losses["loss_ce_marginal"])
        losses["loss_ce_marginal"].backward()
        assert h.conv_seg.weight.grad.abs().sum() > 0


def test_values_that_cannot_be_honoured_raise_one_error_naming_them():
    z, label = _binary_batch(seed=10)
    z3 = z.expand(-1, 3, -1, -1)
    lab3 = label.clamp(max=2)
    for cls in (CEMarginalLoss, LabelMarginalLoss):
        with pytest.raises(ValueError, match="use_mask=True"):
            cls(use_mask=True)
        for red in ("none", "sum"):
            with pytest.raises(ValueError, match=f"reduction='{red}'"):
                cls(reduction=red)
        with pytest.raises(ValueError, match="use_sigmoid=True .* 1 logit channel, got 3"):
            cls(use_sigmoid=True)(z3, lab3)
        with pytest.raises(ValueError, match="reduction_override='sum'"):
            cls()(z3, lab3, reduction_override="sum")
        if cls is LabelMarginalLoss:  # CEMarginalLoss honours avg_factor (its CE term)
            with pytest.raises(ValueError, match="avg_factor=7 is not supported"):
                cls()(z3, lab3, avg_factor=7)
        with pytest.raises(ValueError, match="loss_weight .* got -0.5"):
            cls(loss_weight=-0.5)
        with pytest.raises(ValueError, match="loss_weight .* got nan"):
            cls(loss_weight=float("nan"))
        bad = label.clone()
        bad[0, 0, 0] = 2
        with pytest.raises(ValueError, match="label value 2"):
            cls(use_sigmoid=True)(z, bad)
    with pytest.raises(ValueError, match="class_weight .* must have 1 entry, got 2"):
        CEMarginalLoss(use_sigmoid=True, class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"class_weight=\[1.0, 2.0\]"):
        LabelMarginalLoss(class_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="avg_non_ignore=False"):
        LabelMarginalLoss(avg_non_ignore=False)


@pytest.mark.parametrize("value", [-1, -0.1, float("inf"), float("nan")])
def test_negative_or_non_finite_marginal_weight_is_refused(value):
    with pytest.raises(
        ValueError, match=f"marginal_weight must be a finite number >= 0, got {value}"
    ):
        CEMarginalLoss(marginal_weight=value)


def test_zero_weights_are_allowed_and_mean_what_they_say():
    z, label = _binary_batch(seed=11, dtype=torch.float32)
    bce = CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)(z, label, ignore_index=255)
    torch.testing.assert_close(CEMarginalLoss(marginal_weight=0, use_sigmoid=True)(z, label), bce)
    assert CEMarginalLoss(loss_weight=0, use_sigmoid=True)(z, label).item() == 0.0
    assert LabelMarginalLoss(loss_weight=0, use_sigmoid=True)(z, label).item() == 0.0
