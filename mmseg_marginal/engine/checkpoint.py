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
  loader of local paths (``Runner.load_checkpoint``, ``--resume``, ``load_checkpoint``). The
  remote schemes of mmengine's ``CheckpointLoader`` load under the same allow-list
  (:func:`register_remote_loaders`): ``http(s)://`` through :func:`load_from_http_safe`
  (mmengine's own loader calls torch hub with ``weights_only=False``), ``torchvision://``,
  ``modelzoo://``, ``open-mmlab://``, ``openmmlab://`` and ``mmcls://`` through mmengine's name
  tables and that loader, and every other scheme (``pavi://``, ``s3://``, ...) through
  mmengine's loader, whose ``torch.load`` already takes torch's ``weights_only=True`` default,
  with the refusal turned into the same one-line error.

``getattr`` itself is never allow-listed: a restricted stand-in that resolves only the public
methods of ``HistoryBuffer`` is registered under the name ``builtins.getattr``, so a checkpoint
that reaches anything else through ``getattr`` (the usual route to arbitrary code) is still
refused. Entries are registered as plain objects whose ``__module__``/``__qualname__`` spell the
pickled name: the form that every ``add_safe_globals`` accepts (torch 2.4 and 2.5 take no
``(object, name)`` tuples and break every later weights-only load when given one).

The package's loader keeps torch's own switch: with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` it
loads with ``weights_only=False``, as ``torch.load`` does, so a trusted checkpoint holding other
Python objects (an ``argparse.Namespace``, say) loads as it would without this package; the
remote loaders follow the same switch.

A URL is downloaded into torch hub's cache, ``torch.hub.get_dir()/checkpoints/<file name>``
(:func:`hub_cache_path`), keyed by the last component of the URL's path. When that file exists
the URL is not contacted: an unreachable URL whose file name is cached loads the cached copy
(a log line names it), and two URLs with the same file name share one cache entry. The cached
file goes through the allow-list like any other.
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
    if setup.local_loader:
        register_remote_loaders()
    elif setup.http_loader:
        _restore_mmengine_loaders()
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
    return _load_file_checked(filename, map_location, source=filename)


def _refusal(source: str, reason: str) -> CheckpointLoadError:
    return CheckpointLoadError(
        f"refusing to load checkpoint {source}: it pickles an object outside the "
        f"allow-list of mmengine checkpoint classes ({reason}). mmseg_marginal keeps "
        "torch.load(weights_only=True); if you trust the file, load it with "
        f"{TORCH_NO_WEIGHTS_ONLY_ENV}=1 in the environment."
    )


def _is_refusal(exc: BaseException, reason: str) -> bool:
    return isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in reason


def _load_file_checked(filename: str, map_location: Any, source: str) -> Any:
    """``torch.load`` of a local file with the package's ``weights_only`` and clear errors;
    ``source`` is how the user named the checkpoint (path, or URL and cached copy)."""
    weights_only = _weights_only()
    try:
        return torch.load(filename, map_location=map_location, weights_only=weights_only)
    except Exception as exc:  # torch raises several types for unreadable files
        reason = _torch_load_reason(exc)
        if weights_only and _is_refusal(exc, reason):
            raise _refusal(source, reason) from exc
        raise CheckpointLoadError(
            f"cannot read checkpoint {source}: the file is truncated or not a torch "
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


# --- remote checkpoints ------------------------------------------------------------------


def hub_cache_path(url: str, model_dir: str | None = None) -> str:
    """Where torch hub (and mmengine's URL loader) keeps the download of ``url``.

    ``<model_dir or torch.hub.get_dir()/checkpoints>/<last component of the URL's path>``:
    the cache is keyed by the file name alone, not by the whole URL.
    """
    from urllib.parse import urlparse

    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), "checkpoints")
    return osp.join(model_dir, osp.basename(urlparse(url).path))


def _download_to_cache(url: str, model_dir: str | None, progress: bool) -> str:
    """The cached copy of ``url``, downloaded by torch hub if absent (nothing is fetched when
    the file name is cached)."""
    from urllib.error import URLError

    from mmengine.logging import print_log

    cached = hub_cache_path(url, model_dir)
    if osp.isfile(cached):
        print_log(
            f"checkpoint {url}: loading torch hub's cached copy {cached} (the cache is keyed "
            "by file name; the URL is not contacted)",
            logger="current",
        )
        return cached
    os.makedirs(osp.dirname(cached), exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, cached, None, progress=progress)
    except (URLError, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CheckpointLoadError(f"cannot download checkpoint {url}: {reason}") from exc
    return cached


def load_from_http_safe(
    filename: str,
    map_location: Any = None,
    model_dir: str | None = None,
    progress: bool = os.isatty(0),
) -> Any:
    """mmengine's ``http(s)://`` loader under the allow-list of local checkpoints.

    Downloads into torch hub's cache as mmengine does (rank 0 first, the other ranks after a
    barrier), then loads the cached file as :func:`load_from_local_safe` loads a local one:
    ``weights_only=True`` unless ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``. A URL whose file name is
    already cached is loaded from the cache without contacting the server.

    Raises:
        CheckpointLoadError: the URL does not answer or answers with an HTTP error; the file
            pickles a global outside the allow-list (one line naming the URL, the cached copy
            and the opt-out); it is not a torch checkpoint.
    """
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    cached = None
    if rank == 0:
        cached = _download_to_cache(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = _download_to_cache(filename, model_dir, progress)
    return _load_file_checked(cached, map_location, source=f"{filename} (cached as {cached})")


def _model_zoo_url(scheme: str, name: str, urls: dict) -> str:
    if name not in urls:
        close = ", ".join(sorted(k for k in urls if name.split(".")[0] in k)[:5])
        hint = f" (similar names: {close})" if close else ""
        raise CheckpointLoadError(f"unknown model name {name!r} for {scheme}{hint}")
    return urls[name]


def load_from_torchvision_safe(filename: str, map_location: Any = None) -> Any:
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``): mmengine's name table,
    then :func:`load_from_http_safe`."""
    from mmengine.runner import checkpoint as mm

    scheme = "modelzoo://" if filename.startswith("modelzoo://") else "torchvision://"
    url = _model_zoo_url(scheme, filename[len(scheme) :], mm.get_torchvision_models())
    return load_from_http_safe(url, map_location=map_location)


def load_from_openmmlab_safe(filename: str, map_location: Any = None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: mmengine's tables (its ``hub/openmmlab.json``,
    ``$MMENGINE_HOME/open_mmlab.json``, deprecated names), then :func:`load_from_http_safe` for
    a URL or :func:`load_from_local_safe` for a file under ``MMENGINE_HOME``."""
    from mmengine.runner import checkpoint as mm

    scheme = "open-mmlab://" if filename.startswith("open-mmlab://") else "openmmlab://"
    name = filename[len(scheme) :]
    name = mm.get_deprecated_model_names().get(name, name)
    url = _model_zoo_url(scheme, name, mm.get_external_models())
    if url.startswith(_HTTP_PREFIXES):
        return load_from_http_safe(url, map_location=map_location)
    return load_from_local_safe(osp.join(mm._get_mmengine_home(), url), map_location)


def load_from_mmcls_safe(filename: str, map_location: Any = None) -> Any:
    """``mmcls://NAME``: mmengine's table, :func:`load_from_http_safe`, mmengine's key
    conversion."""
    from mmengine.runner import checkpoint as mm

    url = _model_zoo_url("mmcls://", filename[len("mmcls://") :], mm.get_mmcls_models())
    return mm._process_mmcls_checkpoint(load_from_http_safe(url, map_location=map_location))


def _refusing(loader: Callable) -> Callable:
    """mmengine's loader of another scheme (``pavi://``, ``s3://``, ...), whose ``torch.load``
    already uses torch's default ``weights_only=True`` and the allow-list, with the refusal as
    the one-line :class:`CheckpointLoadError`."""

    @functools.wraps(loader)
    def wrapper(filename: str, map_location: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            return loader(filename, map_location, *args, **kwargs)
        except pickle.UnpicklingError as exc:
            reason = _torch_load_reason(exc)
            if _is_refusal(exc, reason):
                raise _refusal(filename, reason) from exc
            raise

    wrapper._mmseg_marginal_wraps = loader  # type: ignore[attr-defined]
    return wrapper


#: The package's loaders of mmengine's remote schemes, by prefix.
REMOTE_LOADERS: dict[str, Callable] = {
    "http://": load_from_http_safe,
    "https://": load_from_http_safe,
    "torchvision://": load_from_torchvision_safe,
    "modelzoo://": load_from_torchvision_safe,
    "open-mmlab://": load_from_openmmlab_safe,
    "openmmlab://": load_from_openmmlab_safe,
    "mmcls://": load_from_mmcls_safe,
}


def register_remote_loaders() -> None:
    """Load every non-local scheme of mmengine's ``CheckpointLoader`` under the allow-list.

    The schemes in :data:`REMOTE_LOADERS` get the package's loaders; every other registered
    scheme (``pavi://``, ``s3://``, ``petrel://``, and those of other packages) keeps its
    loader, wrapped by :func:`_refusing`.
    """
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if prefix == "" or prefix in REMOTE_LOADERS:
            continue
        if getattr(loader, "_mmseg_marginal_wraps", None) is None:
            _register_loader(prefix, _refusing(loader))
    for prefix, loader in REMOTE_LOADERS.items():
        _register_loader(prefix, loader)


def register_checkpoint_loader() -> None:
    """Make :func:`load_from_local_safe` mmengine's loader for local paths."""
    _register_loader("", load_from_local_safe)


setup_checkpoint_loading()
