"""Checks that the tools run before building an mmengine ``Runner``.

Each check raises one :class:`RunCheckError` (or ``FileNotFoundError``) whose message names the
offending value or path, so that ``tools/train.py`` and ``tools/test.py`` can print a single
clear line instead of a registry or dataloader traceback several frames deep.

Only local paths are checked. A path that mmengine reads through another file backend (a
checkpoint URL, an ``s3://`` data root, a dataset with ``backend_args``) is left to mmengine,
and the checks say so once per path (:func:`note_unchecked`).
"""

from __future__ import annotations

import inspect
import os
import os.path as osp
import re
import sys
from collections.abc import Iterator
from typing import Any

from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend

from ..datasets.class_checks import class_count_mismatch
from ..datasets.folder_checks import check_split_folders
from .config_checks import check_data_root_override, check_label_values, check_loss_configs


class RunCheckError(ValueError):
    """A config or work directory that a run must not start with."""


def remote_backend(path: Any, backend_args: dict | None = None) -> str | None:
    """The name of the non-local mmengine file backend that reads ``path``; None if local.

    Asks mmengine's own backend choice (``mmengine.fileio.get_file_backend``) with the
    dataset's ``backend_args``. A backend that mmengine cannot build here (``s3://`` without
    its client, an unknown scheme) is not local either: it is named by its prefix or name.
    """
    path = str(path)
    try:
        backend = get_file_backend(path, backend_args=backend_args or None)
    except Exception:  # noqa: BLE001 - mmengine raises KeyError/ImportError for such prefixes
        if backend_args and "backend" in backend_args:
            return f"backend {backend_args['backend']!r}"
        return f"backend for {path.split('://', 1)[0] + '://'!r}"
    return None if isinstance(backend, LocalBackend) else type(backend).__name__


_NOTED: set = set()


def note_unchecked(what: str, path: Any, backend: str) -> None:
    """Say once per path that a pre-run check skipped a path read through a remote backend.

    The paths already noted are remembered for the life of the process; :func:`reset_notes`
    forgets them.
    """
    key = (what, str(path))
    if key in _NOTED:
        return
    _NOTED.add(key)
    print(
        f"note: {what} {path} is read through mmengine's {backend}; the pre-run checks "
        "look at local paths only and did not check it",
        file=sys.stderr,
        flush=True,
    )


def reset_notes() -> None:
    """Forget which paths :func:`note_unchecked` has noted, so that each is noted again once
    (for several runs, or tests, in one process)."""
    _NOTED.clear()


def _loss_cfgs(model_cfg: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(path, cfg)`` of every entry of a ``loss_decode`` in a model config."""
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            path = f"{where}.{key}"
            if key == "loss_decode":
                entries = value if isinstance(value, (list, tuple)) else [value]
                for i, entry in enumerate(entries):
                    yield (f"{path}[{i}]" if isinstance(value, (list, tuple)) else path), entry
            else:
                yield from _loss_cfgs(value, path)
    elif isinstance(model_cfg, (list, tuple)):
        for i, value in enumerate(model_cfg):
            yield from _loss_cfgs(value, f"{where}[{i}]")


def check_loss_types(cfg: Config) -> None:
    """Every ``loss_decode`` entry of ``cfg.model`` names a loss registered in mmseg's MODELS,
    stands where its head calls it and builds with its keys and values
    (:func:`mmseg_marginal.utils.config_checks.check_loss_configs`).

    Raises:
        RunCheckError: naming the unknown type, key or bad value and where it stands in the
            config, or a loss placed where the model never calls it.
    """
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    for path, loss_cfg in _loss_cfgs(cfg.get("model", {}), "model"):
        if not isinstance(loss_cfg, dict) or "type" not in loss_cfg:
            raise RunCheckError(f"{path} must be a dict with a 'type' key, got {loss_cfg!r}")
        loss_type = loss_cfg["type"]
        if isinstance(loss_type, str) and MODELS.get(loss_type) is None:
            known = sorted(name for name in MODELS.module_dict if name.endswith("Loss"))
            raise RunCheckError(
                f"unknown loss type {loss_type!r} at {path}: it is not registered in mmseg's "
                f"MODELS (losses registered: {', '.join(known)}). Is "
                "custom_imports=dict(imports=['mmseg_marginal']) in the config?"
            )
    check_loss_configs(cfg)


def _dataset_cfgs(dataset_cfg: Any, where: str) -> Iterator[tuple[str, dict]]:
    """Yield the leaf dataset configs, looking through Concat/Repeat/MultiImageMix wrappers."""
    if not isinstance(dataset_cfg, dict):
        return
    if "datasets" in dataset_cfg:
        for i, child in enumerate(dataset_cfg["datasets"]):
            yield from _dataset_cfgs(child, f"{where}.datasets[{i}]")
    elif "dataset" in dataset_cfg:
        yield from _dataset_cfgs(dataset_cfg["dataset"], f"{where}.dataset")
    else:
        yield where, dataset_cfg


def _dataset_default(dataset_type: Any, arg: str, fallback: str) -> str:
    """The default of ``arg`` in the registered dataset class's ``__init__``."""
    from mmseg.registry import DATASETS

    cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    if cls is None:
        return fallback
    param = inspect.signature(cls.__init__).parameters.get(arg)
    if param is None or param.default is inspect.Parameter.empty:
        return fallback
    return param.default


def check_data_folders(cfg: Config, splits: tuple[str, ...] = ("train", "val")) -> None:
    """The named dataloaders' folders exist, hold images, every image has its annotation, each
    dataset has as many classes as the model's heads predict, a top-level ``data_root`` override
    reaches a dataloader, and (``train`` split) a sample of annotations holds valid labels.

    Every local leaf dataset of the dataloaders (through Concat/Repeat wrappers) is checked by
    :func:`mmseg_marginal.datasets.folder_checks.check_split_folders`; the suffixes default to
    those of the registered dataset class. Nothing is built and no image is read.

    Args:
        cfg (Config): The run's config.
        splits (tuple[str]): Which of ``train``/``val``/``test`` dataloaders to check; a split
            whose dataloader is absent or ``None`` is skipped (the run does not use it).

    The last two are :func:`~mmseg_marginal.utils.config_checks.check_data_root_override` and
    :func:`~mmseg_marginal.utils.config_checks.check_label_values` (which reads up to
    ``LABEL_SAMPLES`` annotations per training dataset).

    Raises:
        FileNotFoundError: naming the missing folder, ``ann_file`` or annotation and the
            config key it comes from.
        RunCheckError: the dataset's class count differs from a head's ``num_classes``; the
            top-level ``data_root`` was changed but no dataloader uses it; an annotation holds
            a label outside ``[0, num_classes)`` and ``ignore_index``.
    """
    check_data_root_override(cfg)
    for split in splits:
        loader = cfg.get(f"{split}_dataloader")
        if not loader:
            continue
        for where, ds in _dataset_cfgs(loader.get("dataset"), f"{split}_dataloader.dataset"):
            problem = class_count_mismatch(cfg.get("model"), ds)
            if problem:
                raise RunCheckError(f"{problem} ({where})")
            root = ds.get("data_root") or ""
            prefix = ds.get("data_prefix") or {}
            ann_file = ds.get("ann_file")
            paths = [root, ann_file or "", *(v for v in prefix.values() if isinstance(v, str))]
            backends = [remote_backend(p, ds.get("backend_args")) for p in paths if p]
            backend = next((b for b in backends if b is not None), None)
            if backend is not None:
                note_unchecked(f"{where} (data_root)", root or paths[1], backend)
                continue
            check_split_folders(
                prefix.get("img_path"),
                prefix.get("seg_map_path"),
                ds.get("img_suffix", _dataset_default(ds.get("type"), "img_suffix", ".jpg")),
                ds.get(
                    "seg_map_suffix", _dataset_default(ds.get("type"), "seg_map_suffix", ".png")
                ),
                ann_file=ann_file,
                where=where,
                data_root=root,
            )
    if "train" in splits:
        check_label_values(cfg, "train")


CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt")


def check_new_run_keeps_checkpoints(work_dir: str, resume: bool) -> None:
    """Refuse to start a new run in a work dir that already holds checkpoints.

    mmengine names checkpoints by iteration (``iter_2000.pth``) and rewrites ``last_checkpoint``,
    so a second run in the same folder overwrites the first run's files as it goes, and a run
    that fails half-way leaves a mixture. Continuing the earlier run (``--resume``) only adds
    files, so it is allowed.

    Raises:
        RunCheckError: naming the work dir and some of its checkpoints.
    """
    if resume or not osp.isdir(work_dir):
        return
    found = sorted(name for name in os.listdir(work_dir) if name.endswith(CHECKPOINT_SUFFIXES))
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise RunCheckError(
            f"work dir {osp.abspath(work_dir)} already holds checkpoints ({shown}); a new run "
            "would overwrite them. Pass --resume to continue that run, or choose another "
            "--work-dir."
        )


_HEAD_WEIGHT = re.compile(
    r"(?:module\.)?(decode_head|auxiliary_head)(?:\.(\d+))?\.conv_seg\.weight"
)


def head_num_classes(model_cfg: dict, head: str, index: int | None) -> int | None:
    """Output channels of the ``conv_seg`` that a head config builds (None if unknown)."""
    head_cfg = model_cfg.get(head)
    if isinstance(head_cfg, (list, tuple)):
        head_cfg = head_cfg[index] if index is not None and index < len(head_cfg) else None
    if not isinstance(head_cfg, dict) or "num_classes" not in head_cfg:
        return None
    out = head_cfg.get("out_channels")
    return int(out) if out is not None else int(head_cfg["num_classes"])


def check_checkpoint_classes(state_dict: dict, model_cfg: dict, checkpoint: str) -> None:
    """The classifier layers of a checkpoint have the config's class count.

    mmengine only warns about a shape mismatch and keeps the randomly initialised classifier,
    which would make a test run report meaningless numbers.

    Args:
        state_dict (dict): Checkpoint weights (``checkpoint['state_dict']``).
        model_cfg (dict): ``cfg.model``.
        checkpoint (str): Name of the checkpoint, for the message.

    Raises:
        RunCheckError: A ``decode_head``/``auxiliary_head`` ``conv_seg.weight`` has a number of
            output channels other than the head's ``num_classes``; the message gives both.
    """
    for key, weight in state_dict.items():
        match = _HEAD_WEIGHT.fullmatch(key)
        if match is None or not hasattr(weight, "shape"):
            continue
        head, index = match.group(1), match.group(2)
        expected = head_num_classes(model_cfg, head, None if index is None else int(index))
        if expected is not None and int(weight.shape[0]) != expected:
            raise RunCheckError(
                f"{checkpoint} predicts {int(weight.shape[0])} classes ({key} has "
                f"{int(weight.shape[0])} output channels) but the config's model.{head} has "
                f"num_classes={expected}"
            )


def check_checkpoint_path(checkpoint: Any, where: str) -> None:
    """A local checkpoint path names an existing file; a remote one is noted, not checked.

    Raises:
        FileNotFoundError: naming the missing file and the option it comes from.
    """
    if not checkpoint:
        return
    backend = remote_backend(checkpoint)
    if backend is not None:
        note_unchecked(f"checkpoint ({where})", checkpoint, backend)
    elif not osp.isfile(osp.expanduser(str(checkpoint))):
        raise FileNotFoundError(f"checkpoint file not found: {checkpoint} ({where})")


def load_state_dict(checkpoint: str) -> dict:
    """The weights of a checkpoint, through mmengine's loader for its path or URL.

    Local files and remote ones (``http(s)://``, ``open-mmlab://``, ...) go through the loaders
    that :mod:`mmseg_marginal.engine.checkpoint` set up (``weights_only=True`` with the
    allow-list of mmengine's checkpoint classes where torch defaults to it); a URL is downloaded
    into torch hub's cache, which the Runner then reuses.

    Raises:
        FileNotFoundError: A local checkpoint does not exist.
        CheckpointLoadError: The checkpoint cannot be read or fetched (one line naming it).
        RunCheckError: It holds no state dict.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from ..engine.checkpoint import CheckpointLoadError

    if remote_backend(checkpoint) is None:
        checkpoint = osp.expanduser(checkpoint)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f"checkpoint file not found: {checkpoint}")
    try:
        ckpt: Any = CheckpointLoader.load_checkpoint(checkpoint, map_location="cpu")
    except (CheckpointLoadError, FileNotFoundError):
        raise
    except Exception as exc:  # noqa: BLE001 - mmengine's and torch's loaders raise many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
        raise CheckpointLoadError(
            f"cannot load checkpoint {checkpoint}: {type(exc).__name__}: {reason}"
        ) from exc
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict):
        raise RunCheckError(f"{checkpoint} holds no state dict")
    return ckpt
