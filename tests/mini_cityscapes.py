"""A miniature Cityscapes tree with the real folder and file naming, for CPU tests.

``make_mini_cityscapes(root)`` writes, for each split, ``leftImg8bit/<split>/<city>/
<city>_<seq>_<frame>_leftImg8bit.png`` (RGB) with ``gtFine/<split>/<city>/..._gtFine_labelIds.png``
(Cityscapes ids, as the official evaluation reads them) and ``..._gtFine_labelTrainIds.png``
(train ids, 255 = ignored, as mmseg's converter writes them), at 256x512 by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as CS_LABELS
from PIL import Image

CITIES = {"train": ("aachen", "bochum"), "val": ("frankfurt",), "test": ("berlin", "bielefeld")}
# every label id with a valid id (ignored ones included: they must map to 255)
ALL_IDS = np.array(sorted({lab.id for lab in CS_LABELS if lab.id >= 0}), np.uint8)
ID_TO_TRAIN = np.full(256, 255, np.uint8)
for _lab in CS_LABELS:
    if _lab.id >= 0 and 0 <= _lab.trainId < 255:
        ID_TO_TRAIN[_lab.id] = _lab.trainId
EVAL_IDS = np.array(sorted(lab.id for lab in CS_LABELS if 0 <= lab.trainId < 255), np.uint8)


def _label_map(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Blocky id map: a road/sky layout plus rectangles of random (also ignored) ids."""
    ids = np.full((height, width), 7, np.uint8)  # road
    ids[: height // 3] = 23  # sky
    ids[height // 3 : height // 2] = 11  # building
    for lab_id in rng.choice(ALL_IDS, size=8, replace=False):
        y, x = rng.integers(0, height - height // 8), rng.integers(0, width - width // 8)
        h, w = rng.integers(height // 16, height // 4), rng.integers(width // 16, width // 4)
        ids[y : y + h, x : x + w] = lab_id
    ids[:4, :4] = 26  # every image has some car
    return ids


def make_mini_cityscapes(
    root: Path,
    per_city: int = 2,
    height: int = 256,
    width: int = 512,
    splits: tuple[str, ...] = ("train", "val", "test"),
) -> dict[str, list[Path]]:
    """Write the tree under ``root``; returns the image paths of each split."""
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, size=(256, 3))
    images: dict[str, list[Path]] = {}
    for split in splits:
        images[split] = []
        for city in CITIES[split]:
            img_dir = root / "leftImg8bit" / split / city
            ann_dir = root / "gtFine" / split / city
            img_dir.mkdir(parents=True, exist_ok=True)
            ann_dir.mkdir(parents=True, exist_ok=True)
            for i in range(per_city):
                stem = f"{city}_{i:06d}_{19 + 7 * i:06d}"
                ids = _label_map(rng, height, width)
                noise = rng.integers(-15, 16, size=(height, width, 3))
                image = np.clip(palette[ids] + noise, 0, 255).astype(np.uint8)
                Image.fromarray(image).save(img_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(ids).save(ann_dir / f"{stem}_gtFine_labelIds.png")
                Image.fromarray(ID_TO_TRAIN[ids]).save(ann_dir / f"{stem}_gtFine_labelTrainIds.png")
                images[split].append(img_dir / f"{stem}_leftImg8bit.png")
    return images


TINY_CONFIG = """
_base_ = [{base!r}]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(depth=18, base_channels=16, stem_channels=16, norm_cfg=norm_cfg),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=32, norm_cfg=norm_cfg),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline)
)
test_dataloader = val_dataloader
env_cfg = dict(cudnn_benchmark=False)
default_hooks = dict(logger=dict(interval=1))
"""


def write_tiny_config(path: Path, base: Path) -> Path:
    """A config inheriting ``base`` (an FPN-R50 Cityscapes config) with a tiny model.

    The model is a 1/4-width ResNetV1c-18 FPN with BN and no pretrained weights, and the test
    pipeline resizes to 512x256, so that CPU training and inference take a fraction of a
    second per image. Everything else (data pipeline, schedule, hooks, loss) is ``base``'s.
    """
    path.write_text(TINY_CONFIG.format(base=str(base)))
    return path


def write_tiny_checkpoint(folder: Path, base: Path) -> tuple[Path, Path]:
    """The tiny config of ``base`` (:func:`write_tiny_config`) and a checkpoint of its randomly
    initialised model (seed 0), written to ``folder``: ``(config, checkpoint)``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    config = write_tiny_config(folder / "tiny_fpn_cityscapes.py", base)
    cfg = Config.fromfile(str(config))
    init_default_scope("mmseg")
    from mmseg.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    checkpoint = folder / "tiny.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, checkpoint)
    return config, checkpoint


def write_fewer_classes_checkpoint(checkpoint: Path, num_classes: int, path: Path) -> Path:
    """A copy of ``checkpoint`` whose decode head predicts only its first ``num_classes``
    classes (the head of a model trained on another dataset), written to ``path``."""
    import torch

    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    for key in ("decode_head.conv_seg.weight", "decode_head.conv_seg.bias"):
        state[key] = state[key][:num_classes]
    torch.save({"state_dict": state}, path)
    return path
