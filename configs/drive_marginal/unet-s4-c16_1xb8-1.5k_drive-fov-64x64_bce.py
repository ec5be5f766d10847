# DRIVE vessels inside the field of view, 64x64 crops; small UNet (4 stages, 16 channels, BN) from
# scratch with one foreground logit (sigmoid, threshold 0.5); batch 8, 1500 iterations, AdamW 1e-3
# with warm-up and poly decay. Loss: BCE (mmseg's CrossEntropyLoss(use_sigmoid=True), mean over
# the valid pixels). Every loss of configs/drive_marginal/ changes only the loss of this config.
_base_ = [
    "../_base_/models/unet-s4-c16_fcn_sigmoid.py",
    "../_base_/datasets/drive_fov-64x64.py",
    "../_base_/default_runtime_marginal.py",
    "../_base_/schedules/schedule_drive_1.5k_adamw.py",
]
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
