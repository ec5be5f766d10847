# Semantic FPN, ResNetV1c-50, Cityscapes 512x1024, the authors' protocol (100 epochs =
# 37.2k iterations at batch 8), cross-entropy averaged over non-ignored pixels.
# Every other loss config of this folder inherits this one and only swaps
# ``model.decode_head.loss_decode``.
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
