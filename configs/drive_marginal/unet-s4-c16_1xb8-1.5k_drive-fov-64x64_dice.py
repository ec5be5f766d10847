# Loss: 1 - Dice of the foreground (binary soft Dice on sigmoid probabilities, per image, over the
# valid pixels; an image without vessel pixels contributes 0).
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type="ClasswiseDiceLoss", log=False, use_sigmoid=True, loss_weight=1.0
        )
    )
)
