# The tiny FPN with a test hook that records, per rank, which iterations and images it ran.
_base_ = ["./tiny_fpn_r18.py"]
custom_imports = dict(imports=["mmseg_marginal", "rank_record_hook"], allow_failed_imports=False)
custom_hooks = [dict(type="RankRecordHook")]
