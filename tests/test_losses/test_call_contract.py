"""mmseg's call contract in every loss: ``reduction_override``, ``avg_factor``, OHEM sampling
through a real decode head, the one pooling name and the deprecated spellings."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from loss_cases import random_batch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_marginal  # noqa: F401  (registers the losses)
from mmseg_marginal.losses import (
    CEMarginalLoss,
    ClasswiseDiceLoss,
    DiceBiasLoss,
    GeneralizedDiceLoss,
    LabelMarginalLoss,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
)

# mmseg 1.2.2's decode heads build their pixel sampler through its own deprecated builder
pytestmark = pytest.mark.filterwarnings(
    "ignore:``build_pixel_sampler`` would be deprecated soon:UserWarning"
)

EPS = torch.finfo(torch.float32).eps
WHOLE_IMAGE_LOSSES = {
    "ClasswiseDiceLoss": ClasswiseDiceLoss,
    "GeneralizedDiceLoss": GeneralizedDiceLoss,
    "DiceBiasLoss": DiceBiasLoss,
    "LabelMarginalLoss": LabelMarginalLoss,
}


def _head_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    feats = (torch.randn(2, 8, 8, 8, generator=g),)
    samples = []
    for _ in range(2):
        s = SegDataSample()
        lab = torch.randint(0, 4, (1, 16, 16), generator=g)
        lab[:, :2] = 255
        s.gt_sem_seg = PixelData(data=lab)
        s.set_metainfo(dict(img_shape=(16, 16), pad_shape=(16, 16)))
        samples.append(s)
    return feats, samples


def _head(loss: dict, thresh):
    torch.manual_seed(0)
    return FCNHead(
        in_channels=8,
        channels=8,
        num_convs=1,
        num_classes=4,
        dropout_ratio=0.0,
        sampler=dict(type="OHEMPixelSampler", thresh=thresh, min_kept=50),
        loss_decode=loss,
    )


@pytest.mark.parametrize("loss_type", ["CEMarginalLoss", "SoftmaxFocalLoss", "SigmoidFocalLoss"])
@pytest.mark.parametrize("thresh", [None, 0.7])
def test_ohem_sampler_trains_the_per_pixel_losses(loss_type, thresh):
    """``OHEMPixelSampler`` ranks pixels by ``reduction_override='none'`` (no thresh) or by
    probability (thresh), then weights them: the head trains with the sampled weights."""
    feats, samples = _head_inputs(seed=1)
    head = _head(dict(type=loss_type), thresh)
    losses = head.loss(feats, samples, train_cfg={})
    name = head.loss_decode.loss_name
    assert torch.isfinite(losses[name])
    losses[name].backward()
    assert head.conv_seg.weight.grad.abs().sum() > 0
    # the loss is the loss weighted by the sample; without thresh the sampler keeps the
    # min_kept * B = 100 valid pixels of highest per-pixel loss
    logits = F.interpolate(head.forward(feats), (16, 16), mode="bilinear")
    label = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    weight = head.sampler.sample(logits, label.unsqueeze(1))
    kept = int((weight[label != 255] > 0).sum())
    assert kept == 100 if thresh is None else kept > 0
    torch.testing.assert_close(losses[name], head.loss_decode(logits, label, weight=weight))


@pytest.mark.parametrize("loss_type", sorted(WHOLE_IMAGE_LOSSES))
def test_losses_without_per_pixel_values_refuse_ohem_without_thresh_in_one_error(loss_type):
    feats, samples = _head_inputs(seed=2)
    head = _head(dict(type=loss_type), None)
    with pytest.raises(ValueError, match="^" + loss_type + r": reduction_override='none' asks"):
        head.loss(feats, samples, train_cfg={})


def test_reduction_override_none_gives_the_per_pixel_terms():
    z, label = random_batch(b=2, k=4, h=5, w=6)
    g = torch.Generator().manual_seed(4)
    w = torch.rand(label.shape, generator=g, dtype=torch.float64)
    valid = label != 255
    lab_c = torch.where(valid, label, 0)
    cw = [1.0, 2.0, 0.5, 1.5]
    got = CEMarginalLoss(class_weight=cw, loss_weight=0.5)(z, label, w, reduction_override="none")
    ce = F.cross_entropy(z, lab_c, weight=torch.tensor(cw, dtype=z.dtype), reduction="none")
    torch.testing.assert_close(got, 0.5 * torch.where(valid, ce * w.float().double(), 0.0))
    logp = F.log_softmax(z, 1).gather(1, lab_c.unsqueeze(1)).squeeze(1)
    focal = -((1 - logp.exp()) ** 2) * logp
    got = SoftmaxFocalLoss(loss_weight=2.0)(z, label, reduction_override="none")
    torch.testing.assert_close(got, 2.0 * torch.where(valid, focal, 0.0))
    # the mean of the per-pixel terms is the loss (mmseg's avg_non_ignore convention)
    mean = got.sum() / (valid.sum() + EPS)
    torch.testing.assert_close(SoftmaxFocalLoss(loss_weight=2.0)(z, label), mean)


def test_avg_factor_is_honoured_by_the_per_pixel_losses_and_refused_by_the_others():
    z, label = random_batch(b=2, k=4, h=5, w=6)
    lam = 0.3
    loss = CEMarginalLoss("kl", marginal_weight=lam, temperature=2.0, loss_weight=1.5)
    ce_sum = CEMarginalLoss(marginal_weight=0.0)(z, label, reduction_override="none").sum()
    r = LabelMarginalLoss("kl", temperature=2.0)(z, label)
    torch.testing.assert_close(
        loss(z, label, avg_factor=7.0), 1.5 * (ce_sum / (7.0 + EPS) + lam * r)
    )
    for focal in (SoftmaxFocalLoss(), SigmoidFocalLoss()):
        per_pixel = focal(z, label, reduction_override="none")
        torch.testing.assert_close(focal(z, label, avg_factor=3.0), per_pixel.sum() / (3.0 + EPS))
    for name, cls in WHOLE_IMAGE_LOSSES.items():
        with pytest.raises(ValueError, match=f"^{name}: avg_factor=3.0 is not supported"):
            cls()(z, label, avg_factor=3.0)
    with pytest.raises(ValueError, match="unexpected keyword arguments \\['avg_non_ignore'\\]"):
        loss(z, label, avg_non_ignore=True)


def test_mmseg_positional_order_of_the_call():
    """``loss(cls_score, label, weight, avg_factor, reduction_override, ignore_index)``."""
    z, label = random_batch(b=2, k=4, h=5, w=6)
    loss = SoftmaxFocalLoss()
    torch.testing.assert_close(
        loss(z, label, None, None, "none", 255),
        loss(z, label, weight=None, reduction_override="none", ignore_index=255),
    )


def test_one_pooling_name_and_the_deprecated_spellings():
    z, label = random_batch(b=3, k=4, h=5, w=6)
    for cls in (CEMarginalLoss, LabelMarginalLoss):
        new = cls("kl", pooling="batch", temperature=2.0)(z, label)
        with pytest.warns(DeprecationWarning, match="target='batch' is deprecated"):
            old = cls("kl", target="batch", temperature=2.0)
        assert old.pooling == "batch" and old.target == "batch"
        torch.testing.assert_close(old(z, label), new)
        with pytest.warns(DeprecationWarning, match="target='prior' is deprecated"):
            old = cls(target="prior", prior=[0.1, 0.2, 0.3, 0.4])
        torch.testing.assert_close(old(z, label), cls(prior=[0.1, 0.2, 0.3, 0.4])(z, label))
        with pytest.raises(ValueError, match="give pooling='batch' or target='image'"):
            cls(pooling="batch", target="image")
    for cls in (ClasswiseDiceLoss, GeneralizedDiceLoss):
        with pytest.warns(DeprecationWarning, match="use pooling='batch'"):
            old = cls(reduction="batch")
        assert old.pooling == "batch" and old.reduction == "mean"
        torch.testing.assert_close(old(z, label), cls(pooling="batch")(z, label))
        # the config spelling builds through mmseg's registry as well
        with pytest.warns(DeprecationWarning):
            built = MODELS.build(dict(type=cls.__name__, reduction="batch"))
        assert built.pooling == "batch"
    # pooled over the batch differs from per image on these inputs
    assert not math.isclose(
        ClasswiseDiceLoss(pooling="batch")(z, label).item(), ClasswiseDiceLoss()(z, label).item()
    )


def test_one_focal_class_per_formula():
    z, label = random_batch(b=2, k=4, h=5, w=6)
    with pytest.warns(DeprecationWarning, match="use type='SigmoidFocalLoss'"):
        old = SoftmaxFocalLoss(gamma=1.5, use_sigmoid=True, alpha=0.25, loss_weight=2.0)
    assert type(old) is SigmoidFocalLoss
    new = SigmoidFocalLoss(gamma=1.5, alpha=0.25, loss_weight=2.0)
    torch.testing.assert_close(old(z, label), new(z, label))
    with pytest.warns(DeprecationWarning):
        built = MODELS.build(dict(type="SoftmaxFocalLoss", use_sigmoid=True))
    assert type(built) is SigmoidFocalLoss
    assert type(MODELS.build(dict(type="SigmoidFocalLoss", use_sigmoid=True))) is SigmoidFocalLoss
    with pytest.raises(ValueError, match="use_sigmoid=False is the softmax focal loss"):
        SigmoidFocalLoss(use_sigmoid=False)
    with pytest.raises(ValueError, match="use_sigmoid=True is the sigmoid focal loss"):
        SoftmaxFocalLoss(2.0, 1.0, "loss_focal", True)  # positionally: no silent softmax
    copied = copy.deepcopy(SoftmaxFocalLoss(gamma=1.0))
    assert type(copied) is SoftmaxFocalLoss and copied.gamma == 1.0
    assert not isinstance(SoftmaxFocalLoss(), SigmoidFocalLoss)
    assert not isinstance(SigmoidFocalLoss(), SoftmaxFocalLoss)
