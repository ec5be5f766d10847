# Semantic FPN, ResNetV1c-50, Cityscapes 512x1024, the authors' protocol as their released
# code runs it (pipeline with the [1.5, 2.5] rescale, their photometric jitter, Nesterov SGD,
# 100 epochs = 37.2k iterations at batch 8, validation every epoch), cross-entropy averaged
# over non-ignored pixels. Every other loss config of this folder inherits this one and only
# swaps ``model.decode_head.loss_decode``.
# Model: mmseg's semantic FPN (ResNetV1c, SyncBN), the setting the paper points to
# (mmsegmentation); the released code used smp's FPN (torchvision ResNet, GroupNorm decoder,
# Dropout2d 0.2) instead.
# Paper-text protocol (rescale factor in [0.5, 1.5]): replace the dataset line below by
#     "../_base_/datasets/cityscapes_marginal_512x1024_paper-text.py",
_base_ = [
    "mmseg::_base_/models/fpn_r50.py",
    "../_base_/datasets/cityscapes_marginal_512x1024.py",
    "../_base_/default_runtime_marginal.py",
    "../_base_/schedules/schedule_37.2k.py",
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        num_classes=19,
        loss_decode=dict(
            type="CrossEntropyLoss", use_sigmoid=False, avg_non_ignore=True, loss_weight=1.0
        ),
    ),
)
