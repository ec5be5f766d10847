# Cityscapes with the rescale range written in the authors' released code: the pipeline of
# cityscapes_marginal_512x1024.py with the factor of the 70 % rescale-and-crop branch drawn
# from [0.5, 1.5], the literal argument of the code's A.RandomScale([0.5, 1.5]), instead of
# the [1.5, 2.5] that albumentations 1.1.0 draws for that argument (it adds 1 to both ends of
# scale_limit). The paper itself states no range (it says the images are resized to
# 512 x 1024). Everything else is identical (a test checks it). To train a configs/fpn_marginal
# config with it, change one line, the dataset entry of _base_ in the CE config its loss
# configs inherit (smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_ce.py for the authors' network,
# fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py for mmseg's FPN):
#     "../_base_/datasets/cityscapes_marginal_512x1024_rescale-0.5-1.5.py",
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
