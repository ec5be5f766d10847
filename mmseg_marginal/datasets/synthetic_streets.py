"""Procedural street scenes: built-in data with Cityscapes-like class imbalance.

``generate_synthetic_streets`` writes scenes drawn by
:func:`~mmseg_marginal.datasets.street_scenes.draw_street_scene` (roads in perspective with
buildings, trees, sidewalks, cars, poles with signs and people; textures, shadows, colour
jitter and sensor noise) in mmseg's folder layout, and ``SyntheticStreetsDataset`` reads them.
Large "stuff" classes cover tens of percent of the pixels and the "thing" classes down to about
0.1-1 % (pole, sign, person), the imbalance that label-marginal losses are about.

Everything is drawn from ``numpy.random.default_rng`` seeded per image from
``(seed, split, index)``, so a seed gives byte-identical files.
"""

import json
from pathlib import Path
from typing import Mapping, Optional, Union

import cv2
import numpy as np
from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDataset
from .street_scenes import (
    CITYSCAPES_THING_PROPORTIONS,
    CLASSES,
    DEFAULT_THING_PROPORTIONS,
    PALETTE,
    check_thing_proportions,
    draw_street_scene,
)

__all__ = [
    "CITYSCAPES_THING_PROPORTIONS",
    "CLASSES",
    "DEFAULT_THING_PROPORTIONS",
    "PALETTE",
    "SyntheticStreetsDataset",
    "generate_synthetic_streets",
]

MIN_SIZE = 32
MAX_SIZE = 4096


@DATASETS.register_module()
class SyntheticStreetsDataset(CheckedSegDataset):
    """Procedural street scenes written by :func:`generate_synthetic_streets`.

    Layout (mmseg's)::

        data/synthetic_streets/img_dir/{train,val}/NNNNN.png
        data/synthetic_streets/ann_dir/{train,val}/NNNNN.png

    9 classes: road, sidewalk, building, sky, vegetation, car, pole, sign,
    person; every pixel is labelled (nothing is ignored).

    Args:
        img_suffix (str): suffix of the images. Defaults to '.png'.
        seg_map_suffix (str): suffix of the annotations. Defaults to '.png'.
        **kwargs: the arguments of ``BaseSegDataset``.
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(
        self, img_suffix: str = ".png", seg_map_suffix: str = ".png", **kwargs: object
    ) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


def check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return int(value)


def generate_synthetic_streets(
    root: Union[str, Path],
    num_train: int = 200,
    num_val: int = 50,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
    thing_proportions: Optional[Mapping[str, float]] = None,
) -> Path:
    """Write a procedural street-scene dataset in mmseg's folder layout.

    Writes ``root/img_dir/{train,val}/NNNNN.png`` (RGB images),
    ``root/ann_dir/{train,val}/NNNNN.png`` (uint8 labels 0..8, class order
    :data:`~mmseg_marginal.datasets.street_scenes.CLASSES`) and ``root/meta.json`` (the
    arguments and the measured pixel share of each class). Image ``i`` of a split is drawn from
    ``numpy.random.default_rng([seed, split_id, i])``, so the same arguments
    give byte-identical files and another seed gives other scenes.

    Class imbalance (means over images, defaults at 128x256): road about 30 %,
    building ~21 %, sky and sidewalk ~16-17 %, vegetation ~10 %,
    car ~5 %, pole ~1.3 % (poles carrying signs included), person ~0.5 %, sign ~0.2 %.

    Args:
        root (str | Path): output folder (created; existing files are overwritten).
        num_train (int): training images, >= 1.
        num_val (int): validation images, >= 1.
        height (int): image height in [32, 4096].
        width (int): image width in [32, 4096].
        seed (int): random seed, >= 0.
        thing_proportions (Mapping[str, float], optional): target mean pixel
            share of some thing classes ('car', 'pole', 'person', 'sign'),
            overriding
            :data:`~mmseg_marginal.datasets.street_scenes.DEFAULT_THING_PROPORTIONS`; each in
            (0, 1), at least one smallest object at this size, all together at most 0.3.

    Returns:
        Path: ``root``.

    Raises:
        ValueError: impossible sizes, counts, seed or proportions.
    """
    num_train = check_int("num_train", num_train, 1, 10**6)
    num_val = check_int("num_val", num_val, 1, 10**6)
    height = check_int("height", height, MIN_SIZE, MAX_SIZE)
    width = check_int("width", width, MIN_SIZE, MAX_SIZE)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    props = check_thing_proportions(thing_proportions, height, width)
    root = Path(root)
    counts = np.zeros(len(CLASSES), np.int64)
    for split_id, (split, num) in enumerate((("train", num_train), ("val", num_val))):
        img_dir = root / "img_dir" / split
        ann_dir = root / "ann_dir" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(num):
            rng = np.random.default_rng([seed, split_id, i])
            rgb, label = draw_street_scene(rng, height, width, props)
            name = f"{i:05d}.png"
            cv2.imwrite(str(img_dir / name), rgb[..., ::-1])
            cv2.imwrite(str(ann_dir / name), label)
            if split == "train":
                counts += np.bincount(label.ravel(), minlength=len(CLASSES))
    meta = dict(
        generator="mmseg_marginal.datasets.synthetic_streets.generate_synthetic_streets",
        num_train=num_train,
        num_val=num_val,
        height=height,
        width=width,
        seed=seed,
        thing_proportions=props,
        classes=list(CLASSES),
        train_pixel_share={k: round(float(v), 6) for k, v in zip(CLASSES, counts / counts.sum())},
    )
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root
