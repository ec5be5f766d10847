# Tiny Semantic FPN (ResNetV1c-18 at half width, FPN neck 64, head 32, BN, from scratch) on the
# built-in procedural street scenes (128x256, 9 classes), 700 iterations of batch 8, CE loss. Its
# -log Dice and CE + L1 siblings change only the loss (configs/synthetic_streets/README.md).
_base_ = [
    "../_base_/models/fpn_r18-half.py",
    "../_base_/datasets/synthetic_streets.py",
    "../_base_/default_runtime_marginal.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
crop_size = (128, 256)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    neck=dict(out_channels=64),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=32, num_classes=9),
)
# From scratch: AdamW with a poly decay (the same for every loss), mmseg's loops and hooks.
max_iters = 700
optimizer = dict(_delete_=True, type="AdamW", lr=2e-3, weight_decay=1e-4)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [
    dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1)
)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
