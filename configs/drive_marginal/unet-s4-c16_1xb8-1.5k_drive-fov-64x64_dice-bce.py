# Loss: DiceCE, BCE + 0.1 * (1 - Dice of the foreground).
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
_bce = {{_base_.model.decode_head.loss_decode}}
model = dict(
    decode_head=dict(
        loss_decode=[
            _bce,
            dict(type="ClasswiseDiceLoss", log=False, use_sigmoid=True, loss_weight=0.1),
        ]
    )
)
