# The authors' FPN (smp 0.2.1, ResNet-50), Cityscapes 512x1024, authors' protocol. Loss: DiceBiasCE: CE + 0.1 * DB,
# DB the label-marginal (bias) term of -log Dice scaled as the authors' CrossEntropyWithDB:
# mean over images and all 19 classes of log(p_k + y_k + 1e-10) (temperature 1).
# The paper text's sum over present classes: drop class_reduction (default 'sum').
_base_ = "./smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_ce.py"
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
            dict(type="DiceBiasLoss", class_reduction="mean", loss_weight=0.1),
        ]
    )
)
