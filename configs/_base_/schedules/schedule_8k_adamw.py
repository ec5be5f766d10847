# 8000 iterations, AdamW (lr 2e-3, weight decay 1e-4), linear warm-up over 200 iterations,
# then poly decay (power 0.9) to 1e-5; validation every 1000 iterations, a checkpoint every
# 500 (the last one kept).
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
