"""``ResNet`` (v1b) + ``SMPFPNHead`` computes segmentation_models_pytorch 0.2.1's ``FPN``.

segmentation_models_pytorch 0.2.1 needs torchvision, and PyPI's torchvision builds for torch
2.13 are CUDA builds that do not import beside the CPU build of torch this suite runs on, so
the reference here is written from smp 0.2.1's source: a torchvision-layout ResNet
(``conv1/bn1/layer1..4/fc`` names, v1.5 Bottleneck with the stride on the 3x3 convolution) as
smp's ``ResNetEncoder``, ``FPNDecoder`` and ``SegmentationHead`` with smp's parameter names.
Where smp 0.2.1 imports, the same tests also run against ``smp.FPN`` itself.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor, nn

import mmseg_marginal  # noqa: F401  (registers SMPFPNHead)
from mmseg_marginal.models import SMPFPNHead, convert_smp_fpn_state_dict

K = 19
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


# ------------------------------------------------------- reference: smp 0.2.1's FPN, by its names


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class TorchvisionResNet(nn.Module):
    """torchvision's ``resnet50``/``resnet101`` layout and parameter names."""

    def __init__(self, depth: int, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), BLOCKS[depth])):
            layers = []
            for j in range(n):
                layers.append(_Bottleneck(inplanes, planes, 2 if (j == 0 and i > 0) else 1))
                inplanes = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def features(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            out.append(x)
        return out


class _SmpEncoder(TorchvisionResNet):
    """smp's ``ResNetEncoder``: torchvision's ResNet without ``fc`` and ``avgpool``."""

    def __init__(self, depth: int):
        super().__init__(depth)
        del self.fc
        del self.avgpool


class _Conv3x3GNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, upsample: bool):
        super().__init__()
        self.upsample = upsample
        self.block = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(32, cout), nn.ReLU()
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.block(x)
        return (
            F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            if (self.upsample)
            else x
        )


class _SegmentationBlock(nn.Module):
    def __init__(self, n_upsamples: int):
        super().__init__()
        blocks = [_Conv3x3GNReLU(256, 128, bool(n_upsamples))]
        blocks += [_Conv3x3GNReLU(128, 128, True) for _ in range(1, n_upsamples)]
        self.block = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class _FPNBlock(nn.Module):
    def __init__(self, skip_channels: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, 256, 1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") + self.skip_conv(skip)


class _FPNDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.p5 = nn.Conv2d(2048, 256, 1)
        self.p4 = _FPNBlock(1024)
        self.p3 = _FPNBlock(512)
        self.p2 = _FPNBlock(256)
        self.seg_blocks = nn.ModuleList(_SegmentationBlock(n) for n in (3, 2, 1, 0))
        self.dropout = nn.Dropout2d(0.2)

    def forward(self, c2: Tensor, c3: Tensor, c4: Tensor, c5: Tensor) -> Tensor:
        p5 = self.p5(c5)
        p4 = self.p4(p5, c4)
        p3 = self.p3(p4, c3)
        p2 = self.p2(p3, c2)
        x = sum(b(p) for b, p in zip(self.seg_blocks, (p5, p4, p3, p2)))
        return self.dropout(x)


class ReferenceFPN(nn.Module):
    """``smp.FPN(f'resnet{depth}', classes=K)`` of smp 0.2.1, by its parameter names."""

    def __init__(self, depth: int):
        super().__init__()
        self.encoder = _SmpEncoder(depth)
        self.decoder = _FPNDecoder()
        self.segmentation_head = nn.Sequential(
            nn.Conv2d(128, K, 1), nn.UpsamplingBilinear2d(scale_factor=4)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.segmentation_head(self.decoder(*self.encoder.features(x)))


def _smp_fpn(depth: int) -> nn.Module:
    smp = pytest.importorskip("segmentation_models_pytorch")
    assert smp.__version__ == "0.2.1", smp.__version__
    return smp.FPN(f"resnet{depth}", encoder_weights=None, classes=K)


REFERENCES = {
    "reference": ReferenceFPN,
    # skipped where smp 0.2.1 (and a torchvision that imports) is not installed
    "smp-0.2.1": _smp_fpn,
}


# ------------------------------------------------------------------------------- the mmseg model


def _mmseg_fpn(depth: int) -> nn.Module:
    init_default_scope("mmseg")
    cfg = dict(
        type="EncoderDecoder",
        backbone=dict(type="ResNet", depth=depth, style="pytorch", norm_cfg=dict(type="BN")),
        decode_head=dict(
            type="SMPFPNHead", num_classes=K, loss_decode=dict(type="CrossEntropyLoss")
        ),
        test_cfg=dict(mode="whole"),
    )
    return MODELS.build(ConfigDict(cfg))


def _n(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_parameter_counts_are_the_authors_model():
    r50 = _mmseg_fpn(50)
    assert _n(r50.backbone) == 23_508_032
    head = r50.decode_head
    assert _n(head) - _n(head.conv_seg) == 2_607_872
    assert _n(head.conv_seg) == 128 * K + K == 2_451
    assert _n(r50) == 26_118_355
    assert _n(_mmseg_fpn(101)) == 45_110_483
    # hand count of the decoder: 1x1 laterals with bias, 3x3 GN blocks (no conv bias)
    laterals = 256 * (2048 + 1024 + 512 + 256) + 4 * 256
    blocks = 4 * (9 * 256 * 128 + 2 * 128) + 3 * (9 * 128 * 128 + 2 * 128)
    assert laterals + blocks == 2_607_872
    assert _n(ReferenceFPN(50)) == 26_118_355


@pytest.mark.parametrize("which", list(REFERENCES))
def test_outputs_equal_the_smp_fpn_with_copied_weights(which: str):
    torch.manual_seed(0)
    ref = REFERENCES[which](50)
    gen = torch.Generator().manual_seed(1)
    state = ref.state_dict()
    for key, value in state.items():  # BN statistics away from (0, 1), so eval mode uses them
        if key.endswith("running_mean"):
            value.copy_(0.1 * torch.randn(value.shape, generator=gen))
        elif key.endswith("running_var"):
            value.copy_(0.5 + torch.rand(value.shape, generator=gen))
    model = _mmseg_fpn(50)
    result = model.load_state_dict(convert_smp_fpn_state_dict(state), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ref.eval()
    model.eval()
    x = torch.randn(2, 3, 256, 512, generator=gen)
    meta = dict(img_shape=(256, 512), ori_shape=(256, 512), pad_shape=(256, 512))
    with torch.no_grad():
        expected = ref(x)
        # mmseg's inference path: backbone, head, resize to the image size (an identity here)
        predicted = model.predict(x, [SegDataSample(metainfo=meta) for _ in range(2)])
    got = torch.stack([sample.seg_logits.data for sample in predicted])
    assert got.shape == expected.shape == (2, K, 256, 512)
    assert float(expected.abs().max()) > 1.0  # not a degenerate comparison
    assert float((got - expected).abs().max()) <= 1e-5


def test_dropout_is_spatial_with_p_0_2_and_acts_only_in_training():
    head = _mmseg_fpn(50).decode_head
    assert isinstance(head.dropout, nn.Dropout2d) and head.dropout.p == 0.2
    feats = [torch.randn(1, c, 64 // s, 128 // s) for c, s in zip(head.in_channels, (1, 2, 4, 8))]
    head.eval()
    with torch.no_grad():
        assert torch.equal(head(feats), head(feats))
    head.train()
    torch.manual_seed(0)
    with torch.no_grad():
        a = head(feats)
        b = head(feats)
    assert not torch.equal(a, b)


def test_torchvision_resnet_state_dict_loads_into_the_backbone(tmp_path):
    """torchvision's ImageNet ResNet checkpoints (``torchvision://resnet50``, or the file smp
    0.2.1 downloads) have the backbone's keys, plus the classifier ``fc`` that mmseg's ResNet
    and smp's encoder both drop."""
    from mmengine.runner import load_checkpoint

    for depth in (50, 101):
        torchvision_sd = TorchvisionResNet(depth).state_dict()
        backbone = _mmseg_fpn(depth).backbone
        result = backbone.load_state_dict(torchvision_sd, strict=False)
        assert result.missing_keys == []
        assert sorted(result.unexpected_keys) == ["fc.bias", "fc.weight"]
        if depth == 50:  # the path mmengine's Pretrained init takes, from a local file
            path = tmp_path / "resnet50.pth"
            torch.save(torchvision_sd, path)
            fresh = _mmseg_fpn(50).backbone
            load_checkpoint(fresh, str(path), map_location="cpu", strict=False)
            loaded = fresh.state_dict()
            for key, value in torchvision_sd.items():
                if not key.startswith("fc."):
                    assert torch.equal(loaded[key], value), key


def test_init_weights_follow_smp():
    torch.manual_seed(0)
    model = _mmseg_fpn(50)
    model.init_weights()  # as mmengine's Runner does: the segmentor initialises its children
    head = model.decode_head
    for conv in [*head.lateral_convs, *[m for m in head.seg_blocks.modules()]]:
        if isinstance(conv, nn.Conv2d):
            fan_in = conv.weight[0].numel()
            bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)  # Kaiming uniform, ReLU gain
            w = conv.weight.abs().max().item()
            assert 0.95 * bound < w <= bound
            assert conv.bias is None or not conv.bias.any()
    w = head.conv_seg.weight
    bound = math.sqrt(6.0 / (w.shape[0] + w.shape[1]))  # Xavier uniform
    assert 0.95 * bound < w.abs().max().item() <= bound and not head.conv_seg.bias.any()
    for gn in (m for m in head.seg_blocks.modules() if isinstance(m, nn.GroupNorm)):
        assert gn.num_groups == 32 and torch.all(gn.weight == 1) and not gn.bias.any()


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(ValueError, match=r"four feature maps.*\[256, 512, 1024\]"):
        SMPFPNHead(in_channels=[256, 512, 1024], num_classes=K)
    head = _mmseg_fpn(50).decode_head.eval()
    feats = [torch.randn(1, c, h, 2 * h) for c, h in zip(head.in_channels, (12, 6, 3, 2))]
    with pytest.raises(ValueError, match=r"\(3, 6\).*multiples of 32"):
        head(feats)
    with pytest.raises(KeyError, match="classification_head.3.weight"):
        convert_smp_fpn_state_dict({"classification_head.3.weight": torch.zeros(1)})
