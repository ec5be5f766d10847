# DRIVE (retinal vessels, 20 training + 20 validation images of 584x565) in mmseg's layout, from
# mmseg's DRIVE base: random resize x[0.5, 2], 64x64 crops, flip, photometric distortion; whole
# images for testing. DRIVEFOVDataset + ApplyFOVMask ignore (255) the pixels outside the field of
# view (masks/<split>/<stem>_mask.png), in training and in evaluation; `fov=False` on a dataset
# scores the whole image instead. Metrics: per-image vessel DSC and HD-95 (BoundaryMetric) and
# predicted vs ground-truth proportions (ProportionMetric).
# Data: `mkdir -p data && ln -s ../../shared/data/drive data/drive` (repository root).
_base_ = "mmseg::_base_/datasets/drive.py"
dataset_type = "DRIVEFOVDataset"
data_root = "data/drive"
img_scale = (584, 565)
crop_size = (64, 64)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="ApplyFOVMask"),
    dict(type="RandomResize", scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PhotoMetricDistortion"),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=img_scale, keep_ratio=True),
    dict(type="LoadAnnotations"),
    dict(type="ApplyFOVMask"),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        dataset=dict(type=dataset_type, data_root=data_root, fov=True, pipeline=train_pipeline)
    ),
)
val_dataloader = dict(
    num_workers=2,
    dataset=dict(type=dataset_type, data_root=data_root, fov=True, pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = [dict(type="BoundaryMetric"), dict(type="ProportionMetric")]
test_evaluator = val_evaluator
