# mmseg-FPN variant (mmseg's semantic FPN R50), Cityscapes 512x1024, authors' protocol. Loss: Generalized Dice (Sudre et
# al. 2017), softmax over the 19 classes, statistics pooled over the batch as the authors'
# (binary-only) GeneralisedDiceLoss pools them; classes absent from the batch get weight 0
# (the authors' eps = 1e-7 would weigh them 1e7; their GDice was only run on binary data, where
# both classes are present).
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True, type="GeneralizedDiceLoss", pooling="batch", loss_weight=1.0
        )
    )
)
