# mmseg's iteration-based schedule (schedule_20k.py: loops, hooks) shortened for a CPU run of at
# most 10 minutes: 1500 iterations, AdamW (lr 1e-3, weight decay 1e-4), linear warm-up over 50
# iterations, then poly decay (power 0.9) to 1e-5; one validation and one checkpoint, at the end.
_base_ = "mmseg::_base_/schedules/schedule_20k.py"
max_iters = 1500
optimizer = dict(_delete_=True, type="AdamW", lr=1e-3, weight_decay=1e-4)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, begin=0, end=50, by_epoch=False),
    dict(type="PolyLR", eta_min=1e-5, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=max_iters, max_keep_ckpts=1)
)
