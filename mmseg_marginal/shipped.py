"""The configs and tools shipped with the package, and the ``mmseg_marginal::`` config scope.

An installed wheel holds the repository's ``configs/`` and ``tools/`` as
``mmseg_marginal/.mim/configs`` and ``mmseg_marginal/.mim/tools`` (copied there by
``setup.py`` when the wheel is built), the layout of OpenMMLab packages. In a clone (an
editable install, or ``PYTHONPATH``), the top-level folders beside the package are used.

:func:`register_config_scope` (called when :mod:`mmseg_marginal` is imported) lets mmengine
resolve ``_base_ = ['mmseg_marginal::drive_marginal/<config>.py']``, as it resolves
``mmseg::``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import List, Optional

PACKAGE_DIR = Path(__file__).resolve().parent
#: Top-level folders of the repository that are shipped.
SHIPPED_FOLDERS = ("configs", "tools")


def shipped_root() -> Path:
    """The folder that holds ``configs/`` and ``tools/``.

    Returns:
        Path: ``mmseg_marginal/.mim`` of an installed package, else the repository root of a
        clone (the parent of the package folder).

    Raises:
        FileNotFoundError: neither place has both folders (a broken installation).
    """
    for root in (PACKAGE_DIR / ".mim", PACKAGE_DIR.parent):
        if all((root / name).is_dir() for name in SHIPPED_FOLDERS):
            return root
    raise FileNotFoundError(
        f"the shipped configs/ and tools/ are missing: neither {PACKAGE_DIR / '.mim'} nor "
        f"{PACKAGE_DIR.parent} holds both (reinstall mmseg_marginal from its wheel or sdist)"
    )


def configs_dir() -> Path:
    """The shipped ``configs/`` folder (see :func:`shipped_root`)."""
    return shipped_root() / "configs"


def tools_dir() -> Path:
    """The shipped ``tools/`` folder (see :func:`shipped_root`)."""
    return shipped_root() / "tools"


def list_configs(*words: str) -> List[str]:
    """The shipped configs (``_base_`` excluded), as paths relative to :func:`configs_dir`.

    Args:
        *words: keep the configs whose relative path contains every word (case-insensitive).

    Returns:
        list[str]: sorted POSIX paths such as ``drive_marginal/unet-..._bce-l1.py``.
    """
    root = configs_dir()
    names = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "_base_" not in p.relative_to(root).parts
    )
    wanted = [w.lower() for w in words]
    return [n for n in names if all(w in n.lower() for w in wanted)]


def resolve_config(name: str) -> str:
    """The path of a config given as a file path or by the name of a shipped config.

    Tried in order: an existing file; a path relative to :func:`configs_dir` (``.py``
    optional, a leading ``configs/`` or ``mmseg_marginal::`` allowed); the file name (with or
    without ``.py``) of exactly one shipped config, ``_base_`` files included.

    Args:
        name: a path, ``drive_marginal/unet-..._bce-l1.py``, ``unet-..._bce-l1`` or
            ``mmseg_marginal::drive_marginal/unet-..._bce-l1.py``.

    Returns:
        str: the path of the file (as given when it exists, else absolute).

    Raises:
        FileNotFoundError: nothing matches (the closest shipped names are listed) or the
            name matches several shipped configs (they are listed).
    """
    if Path(name).is_file():
        return name
    root = configs_dir()
    rel = name.split("::", 1)[1] if name.startswith("mmseg_marginal::") else name
    rel = rel[len("configs/") :] if rel.startswith("configs/") else rel
    stem = rel[:-3] if rel.endswith(".py") else rel
    candidate = root / f"{stem}.py"
    if candidate.is_file():
        return str(candidate)
    every = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    matches = [p for p in every if Path(p).stem == Path(stem).name and p.endswith(f"{stem}.py")]
    if len(matches) == 1:
        return str(root / matches[0])
    if len(matches) > 1:
        raise FileNotFoundError(
            f"config {name!r} matches {len(matches)} shipped configs, give its folder: "
            + ", ".join(matches)
        )
    close = difflib.get_close_matches(stem, [p[:-3] for p in every], n=3, cutoff=0.5)
    hint = f"; closest shipped configs: {', '.join(c + '.py' for c in close)}" if close else ""
    raise FileNotFoundError(
        f"config {name!r} is neither a file nor a shipped config (python -m mmseg_marginal "
        f"configs lists them){hint}"
    )


def register_config_scope(scope: str = "mmseg_marginal") -> Optional[str]:
    """Let mmengine's config parser resolve ``<scope>::<path>`` to the shipped configs of an
    installed wheel.

    mmengine maps a ``pkg::`` prefix to an installed distribution through its
    ``MODULE2PACKAGE`` table and reads ``<package>/.mim/configs/<path>``; this adds
    ``mmseg_marginal`` to the table. The ``_base_`` lines of a config are read before its
    ``custom_imports``, so the package must be imported before the config is loaded (this
    package's command line and ``tools/*.py`` do; mmseg's own ``tools/train.py`` does not).

    Returns:
        str | None: the scope, or None when this mmengine has no such table.
    """
    try:
        from mmengine.config import utils as config_utils
    except ImportError:  # pragma: no cover - mmengine is a requirement
        return None
    table = getattr(config_utils, "MODULE2PACKAGE", None)
    if not isinstance(table, dict):
        return None
    table.setdefault(scope, "mmseg_marginal")
    return scope
