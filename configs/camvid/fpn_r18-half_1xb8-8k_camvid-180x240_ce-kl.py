# CamVid 180x240, Ours(DKL): CE + 0.1 * KL(gt proportions || softmax(10 * logits) proportions).
_base_ = "./fpn_r18-half_1xb8-8k_camvid-180x240_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type="CEMarginalLoss",
            penalty="kl",
            marginal_weight=0.1,
            temperature=10.0,
            avg_non_ignore=True,
            loss_weight=1.0,
        )
    )
)
