# Cityscapes with the training pipeline of the authors' released code, as it ran
# (Liu et al., "The hidden label-marginal biases of segmentation losses"; repository
# by-liu/SegLossBias, seglossbias/data/data_transform.py, with the albumentations 1.1.0
# its requirements.txt pins). This is the default of every configs/fpn_marginal config;
# cityscapes_marginal_512x1024_rescale-0.5-1.5.py is the same with the range the code writes.
#   * with probability 0.3 the whole frame resized to 512x1024 (bicubic), otherwise a
#     random rescale of the 1024x2048 frame by a factor drawn uniformly from [1.5, 2.5]
#     followed by a 512x1024 random crop. The released code writes
#     A.RandomScale([0.5, 1.5]); albumentations 1.1.0 passes scale_limit through
#     to_tuple(scale_limit, bias=1.0), which adds 1 to both ends, so the factor drawn
#     is 1 + [0.5, 1.5] = [1.5, 2.5];
#   * horizontal flip (p=0.5);
#   * RandomBrightnessContrast(0.3, 0.3, p=0.5) then HueSaturationValue (hue +-20,
#     saturation +-30, value +-20, p=0.5), additive shifts as albumentations defines
#     them (mmseg_marginal.datasets.transforms; mmseg's PhotoMetricDistortion cannot
#     express them).
# Test: mmseg's Cityscapes test pipeline, i.e. full 1024x2048 frames.
_base_ = ["mmseg::_base_/datasets/cityscapes.py"]

crop_size = (512, 1024)
scale_ratio_range = (1.5, 2.5)
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
                    ratio_range=scale_ratio_range,
                    keep_ratio=True,
                    interpolation="bicubic",
                ),
                dict(type="RandomCrop", crop_size=crop_size),
            ],
        ],
        prob=[0.3, 0.7],
    ),
    dict(type="RandomFlip", prob=0.5),
    dict(type="RandomBrightnessContrast", brightness_limit=0.3, contrast_limit=0.3, prob=0.5),
    dict(
        type="RandomHueSaturationValue",
        hue_shift_limit=20,
        sat_shift_limit=30,
        val_shift_limit=20,
        prob=0.5,
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
