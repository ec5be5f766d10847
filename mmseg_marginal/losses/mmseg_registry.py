"""Registration of the torch-only loss modules in mmseg's ``MODELS`` (needs mmseg).

Imported by ``import mmseg_marginal``; the classes are registered under their own names, so
``dict(type='CEMarginalLoss', ...)`` in a config builds
:class:`~mmseg_marginal.losses.CEMarginalLoss` itself.
"""

from mmseg.registry import MODELS

from . import LOSS_MODULES

for _cls in LOSS_MODULES:
    MODELS.register_module(module=_cls)
