"""Checks that the tools run before building an mmengine ``Runner``.

Each check raises one :class:`RunCheckError` (or ``FileNotFoundError``) whose message names the
offending value or path, so that ``tools/train.py`` and ``tools/test.py`` can print a single
clear line instead of a registry or dataloader traceback several frames deep.
"""

from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmengine.config import Config


class RunCheckError(ValueError):
    """A config or work directory that a run must not start with."""


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
    """Every ``loss_decode`` entry of ``cfg.model`` names a loss registered in mmseg's MODELS.

    Raises:
        RunCheckError: naming the unknown type and where it stands in the config.
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


def check_data_folders(cfg: Config, splits: tuple[str, ...] = ("train", "val")) -> None:
    """The image and annotation folders of the named dataloaders exist and hold images.

    Args:
        cfg (Config): The run's config.
        splits (tuple[str]): Which of ``train``/``val``/``test`` dataloaders to check; a split
            whose dataloader is absent or ``None`` is skipped (the run does not use it).

    Raises:
        FileNotFoundError: naming the missing folder (or the ``ann_file``) and its config key.
        RunCheckError: an image folder that holds no file with the dataset's image suffix.
    """
    for split in splits:
        loader = cfg.get(f"{split}_dataloader")
        if not loader:
            continue
        for where, ds in _dataset_cfgs(loader.get("dataset"), f"{split}_dataloader.dataset"):
            root = ds.get("data_root") or ""
            prefix = ds.get("data_prefix") or {}
            for key in ("img_path", "seg_map_path"):
                folder = osp.join(root, prefix.get(key, "")) if key in prefix else None
                if folder is not None and not osp.isdir(folder):
                    raise FileNotFoundError(
                        f"data folder not found: {osp.abspath(folder)} "
                        f"({where}.data_prefix.{key}, data_root={root!r})"
                    )
            ann_file = ds.get("ann_file")
            if ann_file:
                ann_path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
                if not osp.isfile(ann_path):
                    raise FileNotFoundError(
                        f"split file not found: {osp.abspath(ann_path)} ({where}.ann_file)"
                    )
            if "img_path" in prefix and not ann_file:
                img_dir = Path(root, prefix["img_path"])
                suffix = ds.get("img_suffix", ".jpg")
                if not any(
                    name.endswith(suffix) for _, _, names in os.walk(img_dir) for name in names
                ):
                    raise RunCheckError(
                        f"no images ending in {suffix!r} in {img_dir.resolve()} "
                        f"({where}.data_prefix.img_path; set {where}.img_suffix if they differ)"
                    )


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
