# mmseg's stock PSPNet-R50 Cityscapes config, unchanged except for the decode-head loss:
# "Ours(L1)", CE + 1.0 * L1 label-marginal penalty (temperature 10). The dict is merged into
# the stock head's CrossEntropyLoss dict (no ``_delete_``: CEMarginalLoss takes its keys).
# The auxiliary head keeps mmseg's CE (weight 0.4). ``marginal_imports.py`` only registers
# the loss.
_base_ = [
    "mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py",
    "../_base_/marginal_imports.py",
]
model = dict(decode_head=dict(loss_decode=dict(type='CEMarginalLoss', penalty='l1', marginal_weight=1.0, temperature=10.0)))  # fmt: skip
