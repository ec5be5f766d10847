# mmseg-FPN variant (mmseg's semantic FPN R50), Cityscapes 512x1024, authors' protocol. Loss: DiceCE: CE + 0.1 * (1 - Dice),
# the Dice as the authors' released code ran it (batch-pooled, absent classes 0 in the mean
# over the 19 classes, smooth 0, eps 1e-7; see the _dice / _logdice configs).
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"
_ce = dict(
    type="CrossEntropyLoss",
    use_sigmoid=False,
    avg_non_ignore=True,
    loss_weight=1.0,
    loss_name="loss_ce",
)
model = dict(
    decode_head=dict(
        loss_decode=[
            _ce,
            dict(
                type="ClasswiseDiceLoss",
                log=False,
                pooling="batch",
                absent="zero",
                smooth=0.0,
                eps=1e-7,
                loss_weight=0.1,
            ),
        ]
    )
)
