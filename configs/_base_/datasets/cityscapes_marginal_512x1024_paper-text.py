# Cityscapes with the paper text's rescale range: the pipeline of
# cityscapes_marginal_512x1024.py (the authors' released code) with the factor of the
# 70 % rescale-and-crop branch drawn from [0.5, 1.5], the range the paper's text (and
# the released code's A.RandomScale([0.5, 1.5]) argument) names, instead of the
# [1.5, 2.5] that albumentations 1.1.0 actually draws for that argument. Everything
# else is identical (a test checks it). To train a configs/fpn_marginal config with it,
# change one line, the dataset entry of _base_ in
# fpn_marginal/fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py (every R50 and R101 config
# inherits it):
#     "../_base_/datasets/cityscapes_marginal_512x1024_paper-text.py",
_base_ = ["./cityscapes_marginal_512x1024.py"]

crop_size = (512, 1024)
scale_ratio_range = (0.5, 1.5)
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
