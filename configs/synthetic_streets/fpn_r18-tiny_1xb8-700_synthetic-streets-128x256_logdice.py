# Street scenes, standalone -log Dice ("-log Dice_1" of the paper, no CE): mean over the classes present in
# each image of -log Dice_k (ClasswiseDiceLoss, log=True). Its label-marginal term (Eq. 1 of the
# paper) is DB = sum_k log(p_hat_k + y_hat_k).
_base_ = "./fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type="ClasswiseDiceLoss", log=True, loss_weight=1.0)
    )
)
