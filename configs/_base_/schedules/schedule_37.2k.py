# The authors' Cityscapes schedule, as their released code runs it (repository
# by-liu/SegLossBias: configs/cityscapes/*.yaml and seglossbias/config/defaults.py):
# 100 epochs of 2975 images at batch 8 (4 GPUs x 2), i.e. 100 * ceil(2975 / 8) = 37,200
# iterations; SGD, lr 0.01, momentum 0.9, weight decay 1e-4, Nesterov momentum
# (defaults.py: SOLVER.NESTEROV = True, not overridden for Cityscapes); iteration-wise poly
# decay (power 0.9) to 1e-4. Validation every epoch (372 iterations), as theirs, and the
# best-mIoU checkpoint kept (best_mIoU_iter_*.pth): the paper's Table 4 reports the best
# validation epoch (the authors' tools/test_net.py loads best.pth, the best of their per-epoch
# validations), i.e. model selection on Cityscapes val, the split the table reports. A
# checkpoint every 10 epochs (the last two kept) and the last one (iter_37200.pth) for resuming.
_base_ = ["mmseg::_base_/schedules/schedule_40k.py"]

iters_per_epoch = 372
max_iters = 100 * iters_per_epoch

optimizer = dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)
optim_wrapper = dict(type="OptimWrapper", optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=iters_per_epoch)
default_hooks = dict(
    checkpoint=dict(
        type="CheckpointHook",
        by_epoch=False,
        interval=10 * iters_per_epoch,
        max_keep_ckpts=2,
        save_last=True,
        save_best="mIoU",
        rule="greater",
    )
)
# Total batch 8 (4 GPUs x 2 images); lets --auto-scale-lr rescale lr for other setups.
auto_scale_lr = dict(enable=False, base_batch_size=8)
