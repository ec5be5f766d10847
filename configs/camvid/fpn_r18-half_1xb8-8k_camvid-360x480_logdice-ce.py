# CamVid 360x480, LogDiceCE: CE + 0.1 * (-log Dice) (per-class soft Dice), as configs/fpn_marginal.
_base_ = "./fpn_r18-half_1xb8-8k_camvid-360x480_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=[
            dict(
                type="CrossEntropyLoss",
                use_sigmoid=False,
                avg_non_ignore=True,
                loss_weight=1.0,
                loss_name="loss_ce",
            ),
            dict(type="ClasswiseDiceLoss", log=True, loss_weight=0.1),
        ]
    )
)
