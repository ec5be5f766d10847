# Runtime shared by the mmseg_marginal configs: mmseg's default runtime (default_scope
# 'mmseg') plus the plugin import.
_base_ = ["mmseg::_base_/default_runtime.py", "./marginal_imports.py"]
