# Semantic FPN on an mmpretrain backbone (ConvNeXt-T, ImageNet-1k weights from
# mmpretrain), built by mmseg through the cross-library registry
# (``type='mmpretrain.ConvNeXt'``), trained with Ours(L1) on the authors' Cityscapes
# data protocol (512x1024, 37.2k iterations at batch 8). The optimiser is mmseg's
# ConvNeXt recipe (AdamW, stage-wise lr decay, AMP) instead of SGD, which ConvNeXt
# does not train well with.
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce-l1.py"

custom_imports = dict(imports=["mmseg_marginal", "mmpretrain.models"], allow_failed_imports=False)
checkpoint_file = "https://download.openmmlab.com/mmclassification/v0/convnext/downstream/convnext-tiny_3rdparty_32xb128-noema_in1k_20220301-795e9634.pth"  # noqa
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type="mmpretrain.ConvNeXt",
        arch="tiny",
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=dict(type="Pretrained", checkpoint=checkpoint_file, prefix="backbone."),
    ),
    neck=dict(in_channels=[96, 192, 384, 768]),
)
optim_wrapper = dict(
    _delete_=True,
    type="AmpOptimWrapper",
    optimizer=dict(type="AdamW", lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg={"decay_rate": 0.9, "decay_type": "stage_wise", "num_layers": 6},
    constructor="LearningRateDecayOptimizerConstructor",
    loss_scale="dynamic",
)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type="PolyLR", power=1.0, begin=1500, end=37200, eta_min=0.0, by_epoch=False),
]
