# Semantic FPN R50, Cityscapes 512x1024, authors' protocol. Loss: Softmax focal loss (gamma = 2).
_base_ = "./fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type="SoftmaxFocalLoss", gamma=2.0, loss_weight=1.0)
    )
)
