# A small UNet for binary segmentation on a CPU: mmseg's UNet (fcn_unet_s5-d16.py) with 4 stages
# (3 downsamplings, input padded to a multiple of 8), 16 base channels, BN, no auxiliary head;
# FCN head at full resolution with one foreground logit (out_channels=1): mmseg applies the
# sigmoid and predicts vessel where it exceeds threshold 0.5. Whole-image inference.
# Convolutions keep PyTorch's default initialisation: with mmseg's UNet default (Kaiming normal,
# fan_out) and the head's N(0, 0.01) classifier this model predicted no vessel pixel after 300
# iterations of the DRIVE schedule (compressed to 300), with PyTorch's the same run reached DSC 70%.
# Loss: BCE, mmseg's CrossEntropyLoss(use_sigmoid=True) averaged over the valid pixels.
_base_ = "mmseg::_base_/models/fcn_unet_s5-d16.py"
norm_cfg = dict(type="BN", requires_grad=True)
model = dict(
    data_preprocessor=dict(size_divisor=8, test_cfg=dict(size_divisor=8)),
    backbone=dict(
        base_channels=16,
        num_stages=4,
        strides=(1, 1, 1, 1),
        enc_num_convs=(2, 2, 2, 2),
        dec_num_convs=(2, 2, 2),
        downsamples=(True, True, True),
        enc_dilations=(1, 1, 1, 1),
        dec_dilations=(1, 1, 1),
        norm_cfg=norm_cfg,
        init_cfg=dict(type="Constant", val=1, layer=["_BatchNorm", "GroupNorm"]),
    ),
    decode_head=dict(
        in_channels=16,
        in_index=3,
        channels=16,
        num_classes=2,
        out_channels=1,
        threshold=0.5,
        norm_cfg=norm_cfg,
        init_cfg=None,
        loss_decode=dict(
            type="CrossEntropyLoss",
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_weight=1.0,
            loss_name="loss_ce",
        ),
    ),
    auxiliary_head=None,
    test_cfg=dict(_delete_=True, mode="whole"),
)
