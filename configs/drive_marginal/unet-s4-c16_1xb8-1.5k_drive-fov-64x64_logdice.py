# Loss: -log Dice of the foreground (binary soft Dice on sigmoid probabilities, per image).
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type="ClasswiseDiceLoss", log=True, use_sigmoid=True, loss_weight=1.0
        )
    )
)
