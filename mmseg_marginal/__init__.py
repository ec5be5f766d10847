"""mmseg_marginal: label-marginal losses, metrics and tools for mmsegmentation 1.x.

Importing this package registers every component in mmseg's registries
(losses in ``MODELS``, metrics in ``METRICS``, datasets in ``DATASETS``, hooks
in ``HOOKS``) and allow-lists the classes of mmengine checkpoints for
``torch.load(weights_only=True)``. In a config::

    custom_imports = dict(imports=['mmseg_marginal'], allow_failed_imports=False)

It also lets mmengine resolve ``mmseg_marginal::<folder>/<config>.py`` to the shipped configs
(:mod:`mmseg_marginal.shipped`).

The losses themselves (:mod:`mmseg_marginal.losses`) need torch only: where mmseg, mmcv or
mmengine cannot be imported, ``import mmseg_marginal.losses`` still works and nothing is
registered (with a warning when those packages are installed but fail to import).
"""

import importlib.util
import warnings

from .version import __version__

_OPENMMLAB = ("mmseg", "mmcv", "mmengine")

try:
    from . import datasets, engine, evaluation, losses  # noqa: F401
    from .losses import mmseg_registry  # noqa: F401
    from .models import SMPFPNHead  # noqa: F401  (registers the decode head in MODELS)
    from .shipped import register_config_scope
except ImportError as _exc:
    _root = (_exc.name or "").split(".")[0]
    if _root not in _OPENMMLAB:
        raise
    try:
        _installed = importlib.util.find_spec(_root) is not None
    except (ImportError, ValueError):
        _installed = False
    if _installed:
        warnings.warn(
            f"mmseg_marginal: nothing is registered in mmseg's registries ({_exc}); the "
            "torch-only losses of mmseg_marginal.losses work without them",
            RuntimeWarning,
            stacklevel=2,
        )
else:
    register_config_scope()

__all__ = ["__version__"]
