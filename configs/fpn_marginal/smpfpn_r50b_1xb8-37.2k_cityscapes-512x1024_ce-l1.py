# The authors' FPN (smp 0.2.1, ResNet-50), Cityscapes 512x1024, authors' protocol. Loss: Ours(L1): CE + 1.0 * mean_k |gt proportion_k - softmax(10 * logits) proportion_k|.
_base_ = "./smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_ce.py"
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
