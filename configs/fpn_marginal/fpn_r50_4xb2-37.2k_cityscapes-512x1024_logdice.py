# Semantic FPN R50, Cityscapes 512x1024, authors' protocol. Loss: -log Dice.
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type="ClasswiseDiceLoss", log=True, loss_weight=1.0)
    )
)
