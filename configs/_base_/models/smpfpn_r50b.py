# The network of the authors' released code: segmentation_models_pytorch 0.2.1's
# FPN(encoder_name="resnet50", classes=19), written with mmseg's components.
#   * backbone: mmseg's ResNet-50 v1b (style="pytorch": stride on the 3x3 convolution,
#     7x7 stem, no deep stem), which has torchvision's layout and parameter names; BN (one GPU
#     at batch 8, as the authors trained); ImageNet weights from the file smp 0.2.1 loads for
#     encoder_weights="imagenet" (pretrainedmodels' URL of torchvision's ResNet-50; needs no
#     torchvision; "torchvision://resnet50" loads torchvision's IMAGENET1K_V1 file instead);
#   * decode head: SMPFPNHead (mmseg_marginal.models): 1x1 lateral convolutions to 256
#     channels, nearest x2 top-down sums, no 3x3 smoothing convolution, per level
#     Conv3x3 + GroupNorm(32) + ReLU blocks to 128 channels with bilinear x2 upsampling
#     (align_corners=True), merged by sum, Dropout2d(0.2), 1x1 classifier, bilinear x4
#     (align_corners=True) to the input size; smp's initialisation.
# 26,118,355 parameters for 19 classes (ResNet-101: 45,110,483), as smp 0.2.1's model.
# Whole-image inference. Loss: CE averaged over non-ignored pixels.
norm_cfg = dict(type="BN", requires_grad=True)
data_preprocessor = dict(
    type="SegDataPreProcessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
)
model = dict(
    type="EncoderDecoder",
    data_preprocessor=data_preprocessor,
    pretrained="https://download.pytorch.org/models/resnet50-19c8e357.pth",
    backbone=dict(
        type="ResNet",
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        deep_stem=False,
        avg_down=False,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style="pytorch",
    ),
    decode_head=dict(
        type="SMPFPNHead",
        in_channels=[256, 512, 1024, 2048],
        in_index=[0, 1, 2, 3],
        channels=128,
        pyramid_channels=256,
        num_groups=32,
        upsampling=4,
        dropout_ratio=0.2,
        num_classes=19,
        align_corners=True,
        loss_decode=dict(
            type="CrossEntropyLoss", use_sigmoid=False, avg_non_ignore=True, loss_weight=1.0
        ),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode="whole"),
)
