# Registers mmseg_marginal's losses, metric and hook when mmengine loads a config.
# Add this file to ``_base_`` of any mmseg config (it holds nothing else, so it can be
# combined with mmseg's own bases without duplicate keys).
custom_imports = dict(imports=["mmseg_marginal"], allow_failed_imports=False)
