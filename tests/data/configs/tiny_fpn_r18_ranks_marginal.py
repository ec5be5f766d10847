# The rank-recording tiny FPN trained with CEMarginalLoss (KL, batch-level target) and SyncBN,
# as a multi-GPU config would have it (SyncBN becomes BN on CPU runs).
_base_ = ["./tiny_fpn_r18_ranks.py"]
norm_cfg = dict(type="SyncBN", requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(
        norm_cfg=norm_cfg,
        loss_decode=dict(
            _delete_=True, type="CEMarginalLoss", penalty="kl", marginal_weight=0.1, pooling="batch"
        ),
    ),
)
