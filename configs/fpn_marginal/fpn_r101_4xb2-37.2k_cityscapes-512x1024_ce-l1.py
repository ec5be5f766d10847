# mmseg-FPN variant, ResNetV1c-101: the R50 config of the same loss with mmseg's R101
# backbone initialisation (as mmseg's fpn_r101 configs).
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce-l1.py"
model = dict(pretrained="open-mmlab://resnet101_v1c", backbone=dict(depth=101))
