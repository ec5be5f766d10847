# Demo, 1 - Dice of the vessel class ("1 - Dice_1" of the paper, no CE): binary soft Dice on the
# sigmoid probabilities, per image. Its label-marginal term favours imbalanced predictions.
_base_ = "./unet-s4-c16_1xb8-400_synthetic-vessels-64x64_bce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type="ClasswiseDiceLoss", log=False, use_sigmoid=True, loss_weight=1.0
        )
    )
)
