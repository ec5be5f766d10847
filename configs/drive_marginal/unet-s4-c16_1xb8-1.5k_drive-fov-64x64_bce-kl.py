# Loss: Ours(DKL), BCE + 0.1 * KL(y_hat || p_hat), the Bernoulli KL divergence between each image's
# ground-truth vessel share y_hat and the predicted share p_hat = mean sigmoid(10 * logit).
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
_bce = {{_base_.model.decode_head.loss_decode}}
model = dict(
    decode_head=dict(
        loss_decode=[
            _bce,
            dict(
                type="LabelMarginalLoss",
                penalty="kl",
                temperature=10.0,
                use_sigmoid=True,
                loss_weight=0.1,
            ),
        ]
    )
)
