# Reference: the same model with mmseg's stock 2-class head, softmax cross-entropy over
# (background, vessel) and argmax prediction (out_channels=2), as a DRIVE user of mmseg has it.
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
model = dict(
    decode_head=dict(
        out_channels=2,
        threshold=None,
        loss_decode=dict(
            _delete_=True,
            type="CrossEntropyLoss",
            use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=1.0,
            loss_name="loss_ce",
        ),
    )
)
