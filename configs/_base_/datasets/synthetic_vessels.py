# Procedural vessel images (mmseg_marginal.datasets.generate_synthetic_vessels): 64x64, background
# and vessel (about 8 % of the pixels), 200 training and 50 validation images written by
# `python tools/demo.py` when absent. Training: horizontal flips of whole images; testing: whole
# images. Metrics: IoU per class, per-image vessel DSC and HD-95 (BoundaryMetric) and predicted vs
# ground-truth proportions (ProportionMetric).
dataset_type = "SyntheticVesselsDataset"
data_root = "data/synthetic_vessels"
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path="img_dir/train", seg_map_path="ann_dir/train"),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path="img_dir/val", seg_map_path="ann_dir/val"),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = [
    dict(type="IoUMetric", iou_metrics=["mIoU"]),
    dict(type="BoundaryMetric"),
    dict(type="ProportionMetric"),
]
test_evaluator = val_evaluator
