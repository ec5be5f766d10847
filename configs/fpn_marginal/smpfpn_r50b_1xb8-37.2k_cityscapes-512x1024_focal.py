# The authors' FPN (smp 0.2.1, ResNet-50), Cityscapes 512x1024, authors' protocol. Loss: focal (gamma = 2) as the
# authors' released code ran it: smp 0.2.1's multi-class FocalLoss, a sigmoid one-vs-rest focal
# term per class, summed over classes and averaged over the valid pixels (no alpha).
# The softmax focal of the paper's text: type="SoftmaxFocalLoss", gamma=2.0.
_base_ = "./smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_ce.py"
model = dict(
    decode_head=dict(
        loss_decode=dict(_delete_=True, type="SigmoidFocalLoss", gamma=2.0, loss_weight=1.0)
    )
)
