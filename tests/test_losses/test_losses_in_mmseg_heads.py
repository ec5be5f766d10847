"""mmseg's decode heads call the losses unchanged (loss_decode lists, config building)."""

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_marginal  # noqa: F401  (registers the losses)
from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss


def _inputs(num_classes: int = 4, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    feats = (torch.randn(2, 8, 8, 8, generator=g),)
    samples = []
    for _ in range(2):
        label = torch.randint(0, num_classes, (1, 16, 16), generator=g)
        label[:, :3] = 255
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(16, 16), pad_shape=(16, 16)))
        samples.append(s)
    return feats, samples


def _head(loss_decode) -> FCNHead:
    torch.manual_seed(0)
    return FCNHead(
        in_channels=8,
        channels=8,
        num_convs=1,
        num_classes=4,
        dropout_ratio=0.0,
        loss_decode=loss_decode,
    )


def test_loss_list_ce_plus_marginal():
    head = _head(
        [
            dict(type="CrossEntropyLoss", loss_weight=1.0, avg_non_ignore=True),
            dict(type="LabelMarginalLoss", penalty="l1", loss_weight=1.0, temperature=10.0),
        ]
    )
    feats, samples = _inputs()
    head.loss_decode[1].enable_stats()
    losses = head.loss(feats, samples, train_cfg={})
    assert {"loss_ce", "loss_marginal", "acc_seg"} <= set(losses)
    # the logged marginal term equals the loss applied to the head's resized logits
    logits = head.forward(feats)
    logits = torch.nn.functional.interpolate(logits, (16, 16), mode="bilinear")
    label = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    torch.testing.assert_close(losses["loss_marginal"], LabelMarginalLoss()(logits, label))
    sum(v for k, v in losses.items() if k.startswith("loss_")).backward()
    assert head.conv_seg.weight.grad is not None
    assert torch.isfinite(head.conv_seg.weight.grad).all()
    marginal = head.loss_decode[1]
    assert marginal.last_stats._fields == ("marginal", "prop_mae")


def test_combined_loss_in_head_equals_the_list():
    feats, samples = _inputs(seed=1)
    combined = _head(dict(type="CEMarginalLoss", penalty="kl", marginal_weight=0.1))
    as_list = _head(
        [
            dict(type="CrossEntropyLoss", avg_non_ignore=True),
            dict(type="LabelMarginalLoss", penalty="kl", loss_weight=0.1),
        ]
    )
    out = combined.loss(feats, samples, train_cfg={})
    ref = as_list.loss(feats, samples, train_cfg={})
    assert "loss_ce_marginal" in out
    torch.testing.assert_close(out["loss_ce_marginal"], ref["loss_ce"] + ref["loss_marginal"])
    assert isinstance(combined.loss_decode, CEMarginalLoss)


@pytest.mark.parametrize(
    "cfg",
    [
        dict(type="ClasswiseDiceLoss", log=True, loss_weight=0.1),
        dict(type="GeneralizedDiceLoss"),
        dict(type="SoftmaxFocalLoss"),
        dict(type="DiceBiasLoss"),
        dict(type="LabelMarginalLoss", prior=[0.25] * 4),
        dict(type="LabelMarginalLoss", pooling="batch", penalty="kl"),
    ],
)
def test_every_loss_builds_from_config_and_runs_in_a_head(cfg):
    loss = MODELS.build(cfg)
    assert loss.loss_name.startswith("loss_")
    head = _head([dict(type="CrossEntropyLoss", avg_non_ignore=True), cfg])
    feats, samples = _inputs()
    losses = head.loss(feats, samples, train_cfg={})
    assert loss.loss_name in losses and torch.isfinite(losses[loss.loss_name])


def test_binary_head_with_sigmoid_losses():
    torch.manual_seed(0)
    head = FCNHead(
        in_channels=8,
        channels=8,
        num_convs=1,
        num_classes=2,
        out_channels=1,
        threshold=0.3,
        dropout_ratio=0.0,
        loss_decode=[
            dict(type="CrossEntropyLoss", use_sigmoid=True),
            dict(type="LabelMarginalLoss", use_sigmoid=True, penalty="kl"),
            dict(type="ClasswiseDiceLoss", use_sigmoid=True, loss_weight=0.1),
        ],
    )
    feats, samples = _inputs(num_classes=2, seed=2)
    for s in samples:  # mmseg's binary CE does not take ignored pixels
        s.gt_sem_seg.data[s.gt_sem_seg.data == 255] = 0
    losses = head.loss(feats, samples, train_cfg={})
    assert {"loss_ce", "loss_marginal", "loss_dice"} <= set(losses)
    logits = torch.nn.functional.interpolate(head.forward(feats), (16, 16), mode="bilinear")
    label = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    expected = LabelMarginalLoss(use_sigmoid=True, penalty="kl")(logits, label)
    torch.testing.assert_close(losses["loss_marginal"], expected)
