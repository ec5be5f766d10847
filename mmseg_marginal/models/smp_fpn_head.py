"""The FPN decoder of segmentation_models_pytorch 0.2.1 as an mmseg decode head.

The authors' released training code (repository by-liu/SegLossBias) builds its Cityscapes
network as ``smp.FPN(encoder_name='resnet50' or 'resnet101', classes=19)`` with
segmentation_models_pytorch 0.2.1. On mmseg's ``ResNet`` (v1b: ``style='pytorch'``,
``deep_stem=False``, the layout and parameter names of torchvision's ResNet), :class:`SMPFPNHead`
computes what that model computes after its encoder. With input features ``c2, c3, c4, c5``
(strides 4, 8, 16, 32)::

    p5 = L5(c5)
    p4 = nearest_x2(p5) + L4(c4);  p3 = nearest_x2(p4) + L3(c3);  p2 = nearest_x2(p3) + L2(c2)
    x  = S5(p5) + S4(p4) + S3(p3) + S2(p2)                     # (N, 128, H/4, W/4)
    y  = bilinear_x4(conv_seg(Dropout2d(x)), align_corners=True)  # (N, K, H, W)

``L*`` are 1x1 convolutions (with bias) to the 256 pyramid channels, with no 3x3 smoothing
convolution after the sum; ``S_l`` is a chain of max(1, n_l) blocks
``Conv3x3(no bias) -> GroupNorm(32) -> ReLU``, each followed by a bilinear x2 upsampling
(align_corners=True) when n_l > 0, with n_l = 3, 2, 1, 0 for p5, p4, p3, p2, so that all four
maps reach stride 4 with 128 channels. ``conv_seg`` is a 1x1 convolution with bias and the
Dropout2d has p = 0.2 (``dropout_ratio``). The head returns logits at the input resolution;
mmseg's loss and prediction resizing are then identities.

Parameters for K classes: lateral convolutions ``256 * (2048 + 1024 + 512 + 256) + 4 * 256``,
segmentation blocks ``4 * (9 * 256 * 128 + 256) + 3 * (9 * 128 * 128 + 256)``, classifier
``128 * K + K``: 2,607,872 + 2,451 for K = 19 (ResNet-50 and -101 alike).

:func:`convert_smp_fpn_state_dict` maps the state dict of an smp 0.2.1 ``FPN`` with a ResNet
encoder onto an mmseg ``EncoderDecoder`` with this head, key for key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import Tensor, nn

__all__ = ["SMPFPNHead", "convert_smp_fpn_state_dict"]


class _ConvGNReLU(nn.Module):
    """``Conv3x3(no bias) -> GroupNorm -> ReLU``, then bilinear x2 (align_corners=True) if
    ``upsample``: smp 0.2.1's ``Conv3x3GNReLU`` (same parameter names)."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int, upsample: bool):
        super().__init__()
        self.upsample = upsample
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
            nn.GroupNorm(num_groups, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.block(x)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return x


class _SegmentationBlock(nn.Module):
    """``max(1, n_upsamples)`` :class:`_ConvGNReLU` blocks, each upsampling x2 when
    ``n_upsamples > 0``: smp 0.2.1's ``SegmentationBlock`` (same parameter names)."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int, n_upsamples: int):
        super().__init__()
        blocks = [_ConvGNReLU(in_channels, out_channels, num_groups, bool(n_upsamples))]
        for _ in range(1, n_upsamples):
            blocks.append(_ConvGNReLU(out_channels, out_channels, num_groups, True))
        self.block = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


@MODELS.register_module()
class SMPFPNHead(BaseDecodeHead):
    """segmentation_models_pytorch 0.2.1's FPN decoder and segmentation head (see the module
    docstring for the computation).

    Args:
        in_channels: Channels of the four backbone outputs, from stride 4 to stride 32
            (ResNet-50/101: ``[256, 512, 1024, 2048]``).
        channels: Channels of the segmentation blocks and of the classifier's input
            (smp's ``decoder_segmentation_channels``, 128).
        pyramid_channels: Channels of the lateral convolutions (smp's
            ``decoder_pyramid_channels``, 256).
        num_groups: GroupNorm groups of the segmentation blocks (32).
        upsampling: Bilinear (align_corners=True) upsampling factor of the logits (4).
        **kwargs: :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead` arguments
            (``num_classes``, ``dropout_ratio`` = 0.2 for smp's ``Dropout2d(0.2)``,
            ``loss_decode``, ...). ``input_transform`` is ``'multiple_select'`` and
            ``in_index`` defaults to ``[0, 1, 2, 3]``.

    Shapes:
        Input: four tensors ``(N, in_channels[i], H / 2**(i + 2), W / 2**(i + 2))``, with H and
        W multiples of 32. Output: ``(N, out_channels, H, W)`` logits.

    Raises:
        ValueError: if ``in_channels`` does not hold four values, or if a feature map does not
            have twice the height and width of the next coarser one (input height or width not
            a multiple of 32).
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (256, 512, 1024, 2048),
        channels: int = 128,
        pyramid_channels: int = 256,
        num_groups: int = 32,
        upsampling: int = 4,
        in_index: Sequence[int] = (0, 1, 2, 3),
        dropout_ratio: float = 0.2,
        align_corners: bool = True,
        init_cfg: dict | None = None,
        **kwargs,
    ):
        in_channels = list(in_channels)
        if len(in_channels) != 4:
            raise ValueError(
                f"SMPFPNHead takes four feature maps (strides 4, 8, 16, 32), got "
                f"in_channels={in_channels}"
            )
        super().__init__(
            in_channels=in_channels,
            channels=channels,
            in_index=list(in_index),
            input_transform="multiple_select",
            dropout_ratio=dropout_ratio,
            align_corners=align_corners,
            init_cfg=init_cfg,
            **kwargs,
        )
        self.pyramid_channels = pyramid_channels
        self.upsampling = upsampling
        # lateral_convs[i] maps the stride-2**(i + 2) feature (smp: p2.skip_conv .. p5)
        self.lateral_convs = nn.ModuleList(
            nn.Conv2d(c, pyramid_channels, kernel_size=1) for c in in_channels
        )
        # seg_blocks in smp's order: p5 (3 upsamplings), p4 (2), p3 (1), p2 (0)
        self.seg_blocks = nn.ModuleList(
            _SegmentationBlock(pyramid_channels, channels, num_groups, n) for n in (3, 2, 1, 0)
        )

    def init_weights(self) -> None:
        """smp 0.2.1's initialisation: ``initialize_decoder`` (Kaiming uniform, fan_in, ReLU
        gain, zero bias) for the lateral and block convolutions, ``initialize_head`` (Xavier
        uniform, zero bias) for ``conv_seg``; GroupNorm keeps weight 1 and bias 0. An
        ``init_cfg`` given to the head is applied instead."""
        if self.init_cfg:
            super().init_weights()
            return
        for module in [*self.lateral_convs.modules(), *self.seg_blocks.modules()]:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
        nn.init.xavier_uniform_(self.conv_seg.weight)
        nn.init.constant_(self.conv_seg.bias, 0)
        self._is_init = True

    @staticmethod
    def _top_down(coarse: Tensor, lateral: Tensor) -> Tensor:
        up = F.interpolate(coarse, scale_factor=2, mode="nearest")
        if up.shape[-2:] != lateral.shape[-2:]:
            raise ValueError(
                f"SMPFPNHead: a feature map of size {tuple(coarse.shape[-2:])} upsampled x2 is "
                f"{tuple(up.shape[-2:])}, the finer one is {tuple(lateral.shape[-2:])}; the "
                "input height and width must be multiples of 32"
            )
        return up + lateral

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Logits ``(N, out_channels, H, W)`` from the backbone's four outputs."""
        c2, c3, c4, c5 = self._transform_inputs(inputs)
        p5 = self.lateral_convs[3](c5)
        p4 = self._top_down(p5, self.lateral_convs[2](c4))
        p3 = self._top_down(p4, self.lateral_convs[1](c3))
        p2 = self._top_down(p3, self.lateral_convs[0](c2))
        x = sum(block(p) for block, p in zip(self.seg_blocks, (p5, p4, p3, p2)))
        x = self.cls_seg(x)
        return F.interpolate(x, scale_factor=self.upsampling, mode="bilinear", align_corners=True)


# smp 0.2.1 FPN parameter prefixes -> mmseg EncoderDecoder with SMPFPNHead
_PREFIXES = (
    ("encoder.", "backbone."),
    ("decoder.p5.", "decode_head.lateral_convs.3."),
    ("decoder.p4.skip_conv.", "decode_head.lateral_convs.2."),
    ("decoder.p3.skip_conv.", "decode_head.lateral_convs.1."),
    ("decoder.p2.skip_conv.", "decode_head.lateral_convs.0."),
    ("decoder.seg_blocks.", "decode_head.seg_blocks."),
    ("segmentation_head.0.", "decode_head.conv_seg."),
)


def convert_smp_fpn_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename the state dict of an smp 0.2.1 ``FPN`` (ResNet encoder, merge policy ``'add'``,
    no auxiliary classification head) to the keys of an mmseg ``EncoderDecoder`` with a
    ``ResNet`` backbone (v1b) and :class:`SMPFPNHead`; the tensors are not copied.

    ``encoder.X`` becomes ``backbone.X`` (torchvision's and mmseg's ResNet share names),
    ``decoder.p5`` / ``decoder.p{4,3,2}.skip_conv`` become ``decode_head.lateral_convs.{3..0}``,
    ``decoder.seg_blocks`` keeps its structure under ``decode_head.``, and
    ``segmentation_head.0`` becomes ``decode_head.conv_seg``.

    Raises:
        KeyError: naming the first key that has no counterpart (for example an encoder other
            than ResNet would still map, but ``classification_head.*`` does not).
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for old, new in _PREFIXES:
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            raise KeyError(f"no mmseg counterpart for smp FPN parameter {key!r}")
    return out
