# Semantic FPN with a ResNetV1c-18 at half width (stem and base 32 channels), FPN neck 128,
# head 64 channels, BN, from scratch (no pretrained weights), 11 classes (CamVid). Loss: CE.
_base_ = "mmseg::_base_/models/fpn_r50.py"
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(depth=18, base_channels=32, stem_channels=32, norm_cfg=norm_cfg),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=128),
    decode_head=dict(
        in_channels=[128, 128, 128, 128],
        channels=64,
        num_classes=11,
        norm_cfg=norm_cfg,
        loss_decode=dict(
            type="CrossEntropyLoss", use_sigmoid=False, avg_non_ignore=True, loss_weight=1.0
        ),
    ),
)
