# The authors' Cityscapes schedule: 100 epochs of 2975 images at batch 8
# (4 GPUs x 2), i.e. 100 * ceil(2975 / 8) = 37,200 iterations; SGD, lr 0.01,
# momentum 0.9, weight decay 1e-4; iteration-wise poly decay (power 0.9) to 1e-4.
# Validation every 5 epochs, a checkpoint every 10 epochs (last two kept) and the
# best-mIoU checkpoint kept.
_base_ = ["mmseg::_base_/schedules/schedule_40k.py"]

iters_per_epoch = 372
max_iters = 100 * iters_per_epoch

optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=5 * iters_per_epoch)
default_hooks = dict(
    checkpoint=dict(
        type="CheckpointHook",
        by_epoch=False,
        interval=10 * iters_per_epoch,
        max_keep_ckpts=2,
        save_best="mIoU",
        rule="greater",
    )
)
# Total batch 8 (4 GPUs x 2 images); lets --auto-scale-lr rescale lr for other setups.
auto_scale_lr = dict(enable=False, base_batch_size=8)
