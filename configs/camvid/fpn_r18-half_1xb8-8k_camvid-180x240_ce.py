# CamVid at half resolution (180x240, CPU-friendly), Semantic FPN with ResNetV1c-18 at half width
# (base 32 channels, FPN neck 128, head 64, BN), from scratch; batch 8, 8000 iterations
# (~175 epochs of the 367 training images), AdamW 2e-3 with linear warm-up and poly decay.
# Loss: CE. The same protocol for every loss of tools/compare_losses.py (only the loss changes).
_base_ = [
    "mmseg::_base_/models/fpn_r50.py",
    "../_base_/datasets/camvid_180x240.py",
    "../_base_/default_runtime_marginal.py",
]
norm_cfg = dict(type="BN", requires_grad=True)
crop_size = (180, 240)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
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
max_iters = 8000
optim_wrapper = dict(
    type="OptimWrapper", optimizer=dict(type="AdamW", lr=2e-3, weight_decay=1e-4), clip_grad=None
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, begin=0, end=200, by_epoch=False),
    dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=200, end=max_iters, by_epoch=False),
]
# Hours per run on a CPU, so runs get resumed: this loop skips the trained batches at the
# sampler instead of loading them again (mmseg_marginal/engine/loops.py).
train_cfg = dict(type="FastResumeIterBasedTrainLoop", max_iters=max_iters, val_interval=1000)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=500, max_keep_ckpts=1),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="SegVisualizationHook"),
)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
