# Cityscapes with the training pipeline of the authors' released code
# (Liu et al., "The hidden label-marginal biases of segmentation losses"),
# rebuilt from mmseg/mmcv transforms:
#   * with probability 0.3 the whole frame resized to 512x1024, otherwise a random
#     rescale of the 1024x2048 frame by a factor in [0.5, 1.5] followed by a
#     512x1024 random crop (bicubic interpolation for images, nearest for labels);
#   * horizontal flip (p=0.5);
#   * photometric jitter: brightness +-0.3 (additive, 0.3 * 255 = 76 grey levels) and
#     contrast x[0.7, 1.3] (the albumentations RandomBrightnessContrast(0.3, 0.3)
#     the authors use), hue +-20 (OpenCV hue units, as their HueSaturationValue)
#     and saturation x[0.7, 1.3] (multiplicative here, additive +-30 in theirs).
# Test: mmseg's Cityscapes test pipeline, i.e. full 1024x2048 frames.
_base_ = ["mmseg::_base_/datasets/cityscapes.py"]

crop_size = (512, 1024)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(
        type="RandomChoice",
        transforms=[
            [dict(type="Resize", scale=(1024, 512), keep_ratio=False, interpolation="bicubic")],
            [
                dict(
                    type="RandomResize",
                    scale=(2048, 1024),
                    ratio_range=(0.5, 1.5),
                    keep_ratio=True,
                    interpolation="bicubic",
                ),
                dict(type="RandomCrop", crop_size=crop_size),
            ],
        ],
        prob=[0.3, 0.7],
    ),
    dict(type="RandomFlip", prob=0.5),
    dict(
        type="PhotoMetricDistortion",
        brightness_delta=76,
        contrast_range=(0.7, 1.3),
        saturation_range=(0.7, 1.3),
        hue_delta=20,
    ),
    dict(type="PackSegInputs"),
]
# The suffixes are CityscapesDataset's defaults, spelled out for tools that read the config
# (mmseg's converter writes *_gtFine_labelTrainIds.png next to the official *_labelIds.png).
suffixes = dict(img_suffix="_leftImg8bit.png", seg_map_suffix="_gtFine_labelTrainIds.png")
train_dataloader = dict(
    batch_size=2, num_workers=4, dataset=dict(pipeline=train_pipeline, **suffixes)
)
val_dataloader = dict(dataset=dict(**suffixes))
test_dataloader = val_dataloader
