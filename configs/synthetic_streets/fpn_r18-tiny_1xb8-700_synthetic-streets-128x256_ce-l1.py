# Street scenes, CE + L1 label-marginal penalty ("Ours(L1)"): CE + 1.0 * mean_k |gt proportion_k - softmax(10 * logits) proportion_k|.
_base_ = "./fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type="CEMarginalLoss",
            penalty="l1",
            marginal_weight=1.0,
            temperature=10.0,
            avg_non_ignore=True,
            loss_weight=1.0,
        )
    )
)
