"""The CPU launch helpers of the tools (mmseg_marginal.utils.launch)."""

from mmseg_marginal.utils.launch import replace_sync_bn


def test_sync_bn_replaced_everywhere():
    cfg = dict(a=dict(type="SyncBN"), b=[dict(norm=dict(type="SyncBN")), dict(type="BN")])
    assert replace_sync_bn(cfg) == 2
    assert cfg == dict(a=dict(type="BN"), b=[dict(norm=dict(type="BN")), dict(type="BN")])
