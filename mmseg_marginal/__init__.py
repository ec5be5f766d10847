"""mmseg_marginal: label-marginal losses, metrics and tools for mmsegmentation 1.x.

Importing this package registers every component in mmseg's registries
(losses in ``MODELS``, metrics in ``METRICS``, datasets in ``DATASETS``, hooks
in ``HOOKS``) and allow-lists the classes of mmengine checkpoints for
``torch.load(weights_only=True)``. In a config::

    custom_imports = dict(imports=['mmseg_marginal'], allow_failed_imports=False)

It also lets mmengine resolve ``mmseg_marginal::<folder>/<config>.py`` to the shipped configs
(:mod:`mmseg_marginal.shipped`).
"""

from . import datasets, engine, evaluation, losses  # noqa: F401
from .models import SMPFPNHead  # noqa: F401  (registers the decode head in MODELS)
from .shipped import register_config_scope
from .version import __version__

register_config_scope()

__all__ = ["__version__"]
