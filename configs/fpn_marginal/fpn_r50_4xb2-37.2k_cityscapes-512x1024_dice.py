# mmseg-FPN variant (mmseg's semantic FPN R50), Cityscapes 512x1024, authors' protocol. Loss: 1 - Dice as the authors' released
# code ran it (their DiceLoss, smp 0.2.1 style, multi-class): intersections and sizes pooled
# over the batch, classes absent from the batch's ground truth counted as 0 in the mean over the
# 19 classes, smooth 0 and eps 1e-7 (denominator and log clamped at eps).
# The per-image Dice of the paper's text: drop reduction/absent/smooth/eps (the defaults).
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type="ClasswiseDiceLoss",
            log=False,
            pooling="batch",
            absent="zero",
            smooth=0.0,
            eps=1e-7,
            loss_weight=1.0,
        )
    )
)
