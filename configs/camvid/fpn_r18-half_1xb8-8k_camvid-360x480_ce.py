# CamVid at full resolution (360x480): the protocol of the 180x240 config (same model, optimiser,
# 8000 iterations of batch 8) on full-size crops, tested at 360x480. Loss: CE.
_base_ = [
    "../_base_/models/fpn_r18-half.py",
    "../_base_/datasets/camvid.py",
    "../_base_/default_runtime_marginal.py",
    "../_base_/schedules/schedule_8k_adamw.py",
]
crop_size = (360, 480)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
randomness = dict(seed=0)
env_cfg = dict(cudnn_benchmark=False)
