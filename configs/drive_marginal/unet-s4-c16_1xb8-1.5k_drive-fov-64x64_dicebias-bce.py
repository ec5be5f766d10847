# Loss: DiceBiasCE, BCE + 0.1 * DB1, DB1 = log(p_hat_1 + y_hat_1): the label-marginal (bias) term
# of -log Dice of the foreground (p_hat_1: mean sigmoid probability, y_hat_1: ground-truth vessel
# share of the image).
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
_bce = {{_base_.model.decode_head.loss_decode}}
model = dict(
    decode_head=dict(
        loss_decode=[
            _bce,
            dict(type="DiceBiasLoss", use_sigmoid=True, loss_weight=0.1),
        ]
    )
)
