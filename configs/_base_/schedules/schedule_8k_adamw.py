# mmseg's iteration-based schedule (schedule_20k.py: loops, hooks) at 8000 iterations with
# AdamW (lr 2e-3, weight decay 1e-4), linear warm-up over 200 iterations, then poly decay
# (power 0.9) to 1e-5; validation every 1000 iterations, a checkpoint every 500 (the last one
# kept).
_base_ = "mmseg::_base_/schedules/schedule_20k.py"
max_iters = 8000
optimizer = dict(_delete_=True, type="AdamW", lr=2e-3, weight_decay=1e-4)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, begin=0, end=200, by_epoch=False),
    dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=200, end=max_iters, by_epoch=False),
]
# Hours per run on a CPU, so runs get resumed: this loop skips the trained batches at the
# sampler instead of loading them again (mmseg_marginal/engine/loops.py).
train_cfg = dict(type="FastResumeIterBasedTrainLoop", max_iters=max_iters, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=1))
