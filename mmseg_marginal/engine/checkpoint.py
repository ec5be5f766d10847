"""Loading mmengine checkpoints on every torch that mmseg 1.x runs on.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: it unpickles only tensors,
containers and allow-listed globals. A checkpoint written by mmengine also pickles its message
hub: ``HistoryBuffer`` objects, numpy arrays and scalars, and (with pickle protocol 2) the
statistics methods of ``HistoryBuffer`` as ``getattr(HistoryBuffer, 'min')``. Without help,
``tools/test.py`` and ``--resume`` fail there with ``Unsupported global: GLOBAL
mmengine.logging.history_buffer.HistoryBuffer``.

:func:`setup_checkpoint_loading` (run when :mod:`mmseg_marginal` is imported) decides by feature
detection what to do, never by parsing version strings:

* ``MMSEG_MARGINAL_SAFE_LOAD=0`` in the environment: nothing. torch and mmengine load checkpoints
  exactly as they do without this package.
* ``torch.load`` does not default to ``weights_only=True`` (torch < 2.6, found by loading a small
  in-memory pickle without the argument), or torch has no ``add_safe_globals`` (torch < 2.4):
  nothing needs fixing, so nothing is changed.
* Otherwise the globals of mmengine checkpoints are allow-listed with
  ``torch.serialization.add_safe_globals``, and :func:`load_from_local_safe` becomes mmengine's
  loader of local paths (``Runner.load_checkpoint``, ``--resume``, ``load_checkpoint``).

``getattr`` itself is never allow-listed: a restricted stand-in that resolves only the public
methods of ``HistoryBuffer`` is registered under the name ``builtins.getattr``, so a checkpoint
that reaches anything else through ``getattr`` (the usual route to arbitrary code) is still
refused. Entries are registered as plain objects whose ``__module__``/``__qualname__`` spell the
pickled name: the form that every ``add_safe_globals`` accepts (torch 2.4 and 2.5 take no
``(object, name)`` tuples and break every later weights-only load when given one).

The package's loader keeps torch's own switch: with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` it
loads with ``weights_only=False``, as ``torch.load`` does, so a trusted checkpoint holding other
Python objects (an ``argparse.Namespace``, say) loads as it would without this package.
"""

from __future__ import annotations

import functools
import inspect
import io
import os
import os.path as osp
import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

#: Set to ``0`` to keep torch's and mmengine's checkpoint loading untouched by this package.
SAFE_LOAD_ENV = "MMSEG_MARGINAL_SAFE_LOAD"
#: torch's own switch (torch >= 2.6): ``1`` makes ``torch.load`` default to ``weights_only=False``.
TORCH_NO_WEIGHTS_ONLY_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
_TRUE = ("1", "y", "yes", "true")  # the values torch reads as true


class CheckpointLoadError(RuntimeError):
    """A checkpoint cannot be loaded safely, is not a checkpoint, or cannot be fetched."""


def _history_buffer_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` restricted to the public methods of ``HistoryBuffer``."""
    if obj is HistoryBuffer and not name.startswith("_"):
        attr = inspect.getattr_static(HistoryBuffer, name, None)
        if inspect.isfunction(attr):
            return getattr(obj, name)
    raise pickle.UnpicklingError(
        f"getattr({obj!r}, {name!r}) is not allowed: only public methods of "
        "mmengine's HistoryBuffer may be resolved by getattr in a checkpoint"
    )


def _named(fn: Callable, pickled_name: str) -> Callable:
    """A wrapper of ``fn`` whose ``__module__``/``__qualname__`` spell ``pickled_name``.

    ``add_safe_globals`` keys a plain entry by ``f'{obj.__module__}.{obj.__qualname__}'`` (torch
    >= 2.6; ``__name__`` before), so the wrapper is found under ``pickled_name`` without the
    tuple form that only torch >= 2.6 accepts.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        return fn(*args)

    module, name = pickled_name.rsplit(".", 1)
    wrapper.__module__, wrapper.__qualname__, wrapper.__name__ = module, name, name
    del wrapper.__wrapped__  # keep inspect from reporting fn's signature and module
    return wrapper


_GETATTR_STAND_IN = _named(_history_buffer_getattr, "builtins.getattr")


def _numpy_globals() -> list:
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
    names: list = [np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar]
    if hasattr(np, "dtypes"):  # numpy >= 1.25: dtype classes are pickled by reference
        names += [
            cls
            for cls in vars(np.dtypes).values()
            if isinstance(cls, type) and issubclass(cls, np.dtype)
        ]
    if core.__name__ == "numpy._core":
        # numpy 2 writes ``numpy._core``; numpy 1 wrote ``numpy.core``: accept both spellings.
        names += [
            _named(core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            _named(core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        ]
    return names


def mmengine_checkpoint_globals() -> list:
    """The globals that mmengine checkpoints pickle, as plain ``add_safe_globals`` entries."""
    return [HistoryBuffer, _GETATTR_STAND_IN, *_numpy_globals()]


class _DefaultProbe:
    """Never allow-listed: loading it tells whether ``torch.load`` defaults to weights_only."""


def torch_load_defaults_to_weights_only() -> bool:
    """Whether ``torch.load`` without ``weights_only`` refuses arbitrary globals in this process.

    Found by behaviour, not by version: an in-memory pickle of a class that no allow-list holds is
    loaded without the argument. True on torch >= 2.6 unless ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    is set; False on older torch.
    """
    buffer = io.BytesIO()
    torch.save(_DefaultProbe(), buffer)
    buffer.seek(0)
    with warnings.catch_warnings():  # torch 2.4-2.5 warn about the coming default
        warnings.simplefilter("ignore")
        try:
            torch.load(buffer)
        except pickle.UnpicklingError:
            return True
        except Exception:  # noqa: BLE001 - any other failure: no weights-only default detected
            return False
    return False


@dataclass(frozen=True)
class CheckpointSetup:
    """What :func:`setup_checkpoint_loading` did, and why."""

    allow_list: bool  #: mmengine's globals were added with ``add_safe_globals``
    local_loader: bool  #: :func:`load_from_local_safe` is mmengine's loader of local paths
    http_loader: bool  #: :func:`load_from_http_clear` is mmengine's loader of http(s) URLs
    reason: str


#: mmengine's own loaders, kept so that a later setup with the switch off can put them back.
_MMENGINE_LOADERS: dict[str, Callable] = {}
_HTTP_PREFIXES = ("http://", "https://")
CHECKPOINT_SETUP: CheckpointSetup


def _register_loader(prefix: str, loader: Callable) -> None:
    schemes = CheckpointLoader._schemes
    if prefix not in _MMENGINE_LOADERS and prefix in schemes:
        _MMENGINE_LOADERS[prefix] = schemes[prefix]
    CheckpointLoader.register_scheme(prefixes=prefix, loader=loader, force=True)


def _restore_mmengine_loaders() -> None:
    for prefix, loader in _MMENGINE_LOADERS.items():
        CheckpointLoader.register_scheme(prefixes=prefix, loader=loader, force=True)


def allow_mmengine_checkpoint_globals() -> bool:
    """Allow-list mmengine's checkpoint globals; False where torch has no ``add_safe_globals``.

    Idempotent.
    """
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:
        return False
    add(mmengine_checkpoint_globals())
    return True


def setup_checkpoint_loading() -> CheckpointSetup:
    """Apply what this torch needs for mmengine checkpoints (see the module docstring).

    Run once at import; running it again (after changing ``MMSEG_MARGINAL_SAFE_LOAD``, say)
    re-decides. The result is also kept in :data:`CHECKPOINT_SETUP`.
    """
    global CHECKPOINT_SETUP
    if os.environ.get(SAFE_LOAD_ENV, "1").strip().lower() in ("0", "no", "false", "off"):
        _restore_mmengine_loaders()
        setup = CheckpointSetup(False, False, False, f"{SAFE_LOAD_ENV}=0")
    elif not hasattr(torch.serialization, "add_safe_globals"):
        setup = CheckpointSetup(
            False, False, True, "torch has no add_safe_globals; torch.load unpickles anything"
        )
    elif not torch_load_defaults_to_weights_only():
        setup = CheckpointSetup(
            False, False, True, "torch.load does not default to weights_only=True"
        )
    else:
        allow_mmengine_checkpoint_globals()
        _register_loader("", load_from_local_safe)
        setup = CheckpointSetup(True, True, True, "torch.load defaults to weights_only=True")
    if setup.http_loader:
        for prefix in _HTTP_PREFIXES:
            _register_loader(prefix, load_from_http_clear)
    if not setup.local_loader and "" in _MMENGINE_LOADERS:
        CheckpointLoader.register_scheme(prefixes="", loader=_MMENGINE_LOADERS[""], force=True)
    CHECKPOINT_SETUP = setup
    return setup


def _weights_only() -> bool:
    """``weights_only`` as ``torch.load`` would choose it when the caller does not pass it."""
    return os.environ.get(TORCH_NO_WEIGHTS_ONLY_ENV, "0").strip().lower() not in _TRUE


def load_from_local_safe(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and clear errors.

    Registered as mmengine's loader of local paths where ``torch.load`` defaults to
    ``weights_only=True``. ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes it load with
    ``weights_only=False``, as it makes ``torch.load``.

    Args:
        filename (str): Path of the checkpoint file.
        map_location: As for :func:`torch.load`.

    Raises:
        FileNotFoundError: The file does not exist.
        CheckpointLoadError: The file pickles a global that is not allow-listed (the message
            names it), or it is not a readable torch checkpoint (truncated, corrupt).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"checkpoint file not found: {filename}")
    weights_only = _weights_only()
    try:
        return torch.load(filename, map_location=map_location, weights_only=weights_only)
    except Exception as exc:  # torch raises several types for unreadable files
        reason = _torch_load_reason(exc)
        if weights_only and isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in reason:
            raise CheckpointLoadError(
                f"refusing to load checkpoint {filename}: it pickles an object outside the "
                f"allow-list of mmengine checkpoint classes ({reason}). mmseg_marginal keeps "
                "torch.load(weights_only=True); if you trust the file, load it with "
                f"{TORCH_NO_WEIGHTS_ONLY_ENV}=1 in the environment."
            ) from exc
        raise CheckpointLoadError(
            f"cannot read checkpoint {filename}: the file is truncated or not a torch "
            f"checkpoint ({type(exc).__name__}: {reason})"
        ) from exc


def load_from_http_clear(filename: str, map_location: Any = None, **kwargs: Any) -> Any:
    """mmengine's loader of http(s) URLs, with a download failure as one error naming the URL.

    The download and the cache (torch hub's ``checkpoints`` folder) are mmengine's, as in mmseg.

    Raises:
        CheckpointLoadError: The URL does not answer, answers with an HTTP error, or the
            download is interrupted.
    """
    from urllib.error import URLError

    loader = _MMENGINE_LOADERS.get("http://")
    if loader is None:  # mmengine without an http loader: nothing to wrap
        raise CheckpointLoadError(f"cannot download checkpoint {filename}: no http loader")
    try:
        return loader(filename, map_location=map_location, **kwargs)
    except (URLError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CheckpointLoadError(f"cannot download checkpoint {filename}: {reason}") from exc
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointLoadError(
            f"cannot read checkpoint {filename} (downloaded by mmengine): "
            f"{type(exc).__name__}: {_torch_load_reason(exc)}"
        ) from exc


_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "(")


def _torch_load_reason(exc: BaseException) -> str:
    """The informative line of a ``torch.load`` error, without torch's generic advice."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:  # torch puts the unpickler's own words behind this marker
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip()
            if detail:
                return detail.split(" Please use")[0]
    for line in lines:
        if "GLOBAL" in line:
            return line
    rest = [line for line in lines if not line.startswith(_TORCH_ADVICE)]
    if not rest:
        return lines[0] if lines else "no detail"
    return rest[0].split(". This is an internal")[0]


def register_checkpoint_loader() -> None:
    """Make :func:`load_from_local_safe` mmengine's loader for local paths."""
    _register_loader("", load_from_local_safe)


setup_checkpoint_loading()
