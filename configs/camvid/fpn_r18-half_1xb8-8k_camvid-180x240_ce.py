# CamVid at half resolution (180x240, CPU-friendly), Semantic FPN with ResNetV1c-18 at half width
# (base 32 channels, FPN neck 128, head 64, BN), from scratch; batch 8, 8000 iterations
# (~175 epochs of the 367 training images), AdamW 2e-3 with linear warm-up and poly decay.
# Loss: CE. The same protocol for every loss of tools/compare_losses.py (only the loss changes).
_base_ = [
    "../_base_/models/fpn_r18-half.py",
    "../_base_/datasets/camvid_180x240.py",
    "../_base_/default_runtime_marginal.py",
    "../_base_/schedules/schedule_8k_adamw.py",
]
crop_size = (180, 240)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
