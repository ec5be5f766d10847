# Demo, Ours(L1): BCE + 1.0 * |y_hat - p_hat|, the L1 distance between each image's ground-truth
# vessel share y_hat and the predicted share p_hat = mean sigmoid(10 * logit) (tau = 10).
_base_ = "./unet-s4-c16_1xb8-400_synthetic-vessels-64x64_bce.py"
_bce = {{_base_.model.decode_head.loss_decode}}
model = dict(
    decode_head=dict(
        loss_decode=[
            _bce,
            dict(
                type="LabelMarginalLoss",
                penalty="l1",
                temperature=10.0,
                use_sigmoid=True,
                loss_weight=1.0,
            ),
        ]
    )
)
