# Loss: the paper's binary generalized Dice (Sudre et al. 2017) on the sigmoid probabilities of
# the foreground and the background, per image.
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type="GeneralizedDiceLoss", use_sigmoid=True, loss_weight=1.0
        )
    )
)
