# The authors' FPN with a ResNet-101 encoder (smp 0.2.1's FPN(encoder_name='resnet101')):
# the R50 config of the same loss with depth 101 and the ResNet-101 ImageNet file that
# smp 0.2.1 loads (torchvision's weights).
_base_ = "./smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_focal.py"
model = dict(
    pretrained="https://download.pytorch.org/models/resnet101-5d3b4d8f.pth",
    backbone=dict(depth=101),
)
