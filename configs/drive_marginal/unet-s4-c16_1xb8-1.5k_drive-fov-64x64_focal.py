# Loss: sigmoid focal loss on the foreground logit (gamma = 2, no alpha), averaged over the valid
# pixels.
_base_ = "./unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type="SigmoidFocalLoss", gamma=2.0, loss_weight=1.0)
    )
)
