# Demo: the small UNet of the DRIVE configs (4 stages, 16 channels, BN, from scratch, one
# foreground logit with sigmoid and threshold 0.5) on the built-in procedural vessel images
# (64x64, background and vessel), batch 8, 400 iterations, AdamW 1e-3 with warm-up and poly decay.
# Loss: BCE (mmseg's CrossEntropyLoss(use_sigmoid=True)). `python tools/demo.py` trains this
# config and its 1 - Dice and BCE + L1 siblings and prints the comparison.
_base_ = [
    "../_base_/models/unet-s4-c16_fcn_sigmoid.py",
    "../_base_/datasets/synthetic_vessels.py",
    "../_base_/default_runtime_marginal.py",
    "mmseg::_base_/schedules/schedule_20k.py",
]
max_iters = 400
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
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
