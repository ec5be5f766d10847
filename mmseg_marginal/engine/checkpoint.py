"""Loading mmengine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` unpickles only tensors, containers and allow-listed globals.
A checkpoint written by mmengine 0.10.7 also pickles its message hub: ``HistoryBuffer``
objects, numpy arrays and scalars, and (with pickle protocol 2) the statistics methods of
``HistoryBuffer`` as ``getattr(HistoryBuffer, 'min')``. Without help, ``tools/test.py`` and
``--resume`` fail with ``Unsupported global: GLOBAL mmengine.logging.history_buffer.HistoryBuffer``.

:func:`allow_mmengine_checkpoint_globals` allow-lists exactly those globals. ``getattr`` is not
allow-listed as such: a restricted stand-in resolves only the public methods of
``HistoryBuffer``, so a checkpoint that tries to reach anything else through ``getattr`` (the
usual route to arbitrary code) is still refused. :func:`load_from_local_safe` replaces
mmengine's loader of local files, keeps ``weights_only=True`` and turns its errors into one
line that names the file and the reason.
"""

from __future__ import annotations

import inspect
import os.path as osp
import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointLoadError(RuntimeError):
    """A checkpoint file exists but cannot be loaded safely or is not a checkpoint."""


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
            (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            (core.multiarray.scalar, "numpy.core.multiarray.scalar"),
        ]
    return names


def mmengine_checkpoint_globals() -> list:
    """The globals that mmengine 0.10.7 checkpoints pickle, in ``add_safe_globals`` form."""
    return [HistoryBuffer, (_history_buffer_getattr, "builtins.getattr"), *_numpy_globals()]


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the classes of mmengine's checkpoints for ``torch.load(weights_only=True)``.

    Idempotent; called when :mod:`mmseg_marginal` is imported.
    """
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def load_from_local_safe(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and clear errors.

    Registered as mmengine's loader of local paths, so ``Runner.load_checkpoint``,
    ``--resume`` and ``load_checkpoint`` all use it.

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
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable files
        reason = _torch_load_reason(exc)
        if isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in reason:
            raise CheckpointLoadError(
                f"refusing to load checkpoint {filename}: it pickles an object outside the "
                f"allow-list of mmengine checkpoint classes ({reason}). mmseg_marginal keeps "
                "torch.load(weights_only=True); load such a file only if you trust it."
            ) from exc
        raise CheckpointLoadError(
            f"cannot read checkpoint {filename}: the file is truncated or not a torch "
            f"checkpoint ({type(exc).__name__}: {reason})"
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
    CheckpointLoader.register_scheme(prefixes="", loader=load_from_local_safe, force=True)


allow_mmengine_checkpoint_globals()
register_checkpoint_loader()
