"""Optional dependencies: which ``pip install 'mmseg_marginal[EXTRA]'`` brings what.

The losses, metrics, datasets and tools for training and testing need only mmseg's stack. A few
features need more; each is declared as an extra in ``setup.py``:

========================  =================  ============================================
package                   extra              needed by
========================  =================  ============================================
``matplotlib``            ``analysis``       the plots of ``tools/compare_losses.py`` and
                                             ``tools/analysis/*.py``
``cityscapesscripts``     ``cityscapes``     ``tools/cityscapes_submission.py`` (mmseg's
                                             ``CityscapesMetric``)
``mmpretrain``            ``mmpretrain``     the ConvNeXt config (``mmpretrain.`` backbones)
========================  =================  ============================================

:func:`require_extra` imports such a package or raises :class:`MissingExtraError`, whose one
line names the extra to install. :func:`explain_import_error` turns an ``ImportError`` raised
elsewhere (a config's ``custom_imports``, mmengine's ``mmseg::`` config scope) into that line.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

#: top-level module -> (distribution, extra)
EXTRAS = {
    "matplotlib": ("matplotlib", "analysis"),
    "cityscapesscripts": ("cityscapesscripts", "cityscapes"),
    "mmpretrain": ("mmpretrain", "mmpretrain"),
}


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is missing. A ``ValueError`` too, so tools print it as one line."""


def _message(module: str, feature: str) -> str:
    top = module.split(".")[0]
    if top == "pkg_resources":
        return (
            f"{feature} needs pkg_resources, which setuptools >= 81 no longer ships (mmengine "
            "imports it to resolve 'mmseg::' config paths): pip install 'setuptools<81'"
        )
    dist, extra = EXTRAS[top]
    return (
        f"{feature} needs {dist}, which is not installed: "
        f"pip install 'mmseg_marginal[{extra}]' (or pip install {dist})"
    )


def require_extra(module: str, feature: str) -> ModuleType:
    """Import ``module`` (from a package of an extra) or raise :class:`MissingExtraError`.

    Args:
        module (str): Module to import, e.g. ``'matplotlib.pyplot'``.
        feature (str): What needs it, for the message, e.g. ``'the per-class plot'``.

    Raises:
        MissingExtraError: The package is not installed; the message names the extra.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if (exc.name or "").split(".")[0] != top or top not in EXTRAS:
            raise
        raise MissingExtraError(_message(module, feature), name=top) from None


def explain_import_error(exc: BaseException, feature: str) -> Optional[MissingExtraError]:
    """The :class:`MissingExtraError` behind ``exc``, if an extra or pkg_resources is missing.

    Follows ``__cause__``/``__context__``, because mmengine re-raises a failed
    ``custom_imports`` entry as a new ``ImportError('Failed to import ...')``.

    Returns:
        The error to report, or None when ``exc`` is about something else.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MissingExtraError):
            return exc
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            top = exc.name.split(".")[0]
            if top in EXTRAS or top == "pkg_resources":
                return MissingExtraError(_message(top, feature), name=top)
        exc = exc.__cause__ or exc.__context__
    return None
