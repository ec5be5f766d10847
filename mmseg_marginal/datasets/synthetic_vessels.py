"""Procedural vessel images: built-in binary data with thin, low-contrast foreground.

``generate_synthetic_vessels`` writes small fundus-like images (an uneven orange background
with smooth texture) crossed by dark curvilinear "vessels" one to three pixels wide, blurred and
with sensor noise, in mmseg's folder layout; ``SyntheticVesselsDataset`` reads them. The vessel
class covers about 8 % of the pixels (2-18 % per image), DRIVE's setting in miniature: thin
structures whose boundary pixels are uncertain, where the losses' label-marginal biases show as
a predicted vessel share above or below the ground truth.

Each vessel is a random walk with smoothly drifting curvature, drawn with OpenCV at sub-pixel
precision; each image has 4-8 of them and one contrast in [0.12, 0.3] (the background is in
[0.3, 0.8]). Everything is drawn from ``numpy.random.default_rng`` seeded per image from
``(seed, split, index)``, so a seed gives byte-identical files.
"""

import json
from pathlib import Path
from typing import Tuple, Union

import cv2
import numpy as np
from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDataset
from .synthetic_streets import check_int

__all__ = [
    "GENERATOR",
    "VESSEL_CLASSES",
    "SyntheticVesselsDataset",
    "draw_vessel_image",
    "generate_synthetic_vessels",
]

VESSEL_CLASSES = ("background", "vessel")
VESSEL_PALETTE = [[0, 0, 0], [255, 255, 255]]
MIN_SIZE = 32
MAX_SIZE = 1024
#: How ``meta.json`` names the generator, so that a reader can tell this data from other data.
GENERATOR = f"{__name__}.generate_synthetic_vessels"


@DATASETS.register_module()
class SyntheticVesselsDataset(CheckedSegDataset):
    """Procedural vessel images written by :func:`generate_synthetic_vessels`.

    Layout (mmseg's)::

        data/synthetic_vessels/img_dir/{train,val}/NNNNN.png
        data/synthetic_vessels/ann_dir/{train,val}/NNNNN.png

    2 classes, background (0) and vessel (1); every pixel is labelled. For a sigmoid head
    (``out_channels=1``) the vessel is the foreground.

    Args:
        img_suffix (str): suffix of the images. Defaults to '.png'.
        seg_map_suffix (str): suffix of the annotations. Defaults to '.png'.
        **kwargs: the arguments of ``BaseSegDataset``.
    """

    METAINFO = dict(classes=VESSEL_CLASSES, palette=VESSEL_PALETTE)

    def __init__(
        self, img_suffix: str = ".png", seg_map_suffix: str = ".png", **kwargs: object
    ) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


def _vessel_path(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One vessel: a random walk of 1.5-pixel steps whose curvature drifts (AR(1) noise)."""
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    angle, curvature = rng.uniform(0, 2 * np.pi), 0.0
    points = []
    for _ in range(2 * (height + width)):
        curvature = 0.9 * curvature + rng.normal(0, 0.03)
        angle += curvature
        x, y = x + 1.5 * np.cos(angle), y + 1.5 * np.sin(angle)
        points.append((x, y))
        if not (-5 < x < width + 5 and -5 < y < height + 5):
            break
    return np.asarray(points)


def draw_vessel_image(
    rng: np.random.Generator, height: int, width: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one image and its labels.

    Args:
        rng: the random generator (consumed).
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        tuple: ``(rgb, label)``, uint8 arrays of shape (H, W, 3) and (H, W) (labels 0 and 1).
    """
    label = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(4, 9))):
        thickness = int(rng.choice([1, 1, 1, 2, 2]))
        points = np.round(_vessel_path(rng, height, width) * 4).astype(np.int32)
        # shift=2: coordinates in quarter pixels
        cv2.polylines(label, [points], False, 1, thickness, lineType=cv2.LINE_8, shift=2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    shading = np.cos((xx - cx) / width * np.pi) * np.cos((yy - cy) / height * np.pi)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 3)
    contrast = rng.uniform(0.12, 0.3)
    grey = 0.55 + 0.25 * shading + 0.08 * texture - contrast * label
    grey = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 0.8)
    grey = grey + rng.normal(0, 0.04, grey.shape)
    rgb = np.stack([0.9 * grey + 0.1, 0.6 * grey, 0.3 * grey], axis=-1)
    return np.clip(rgb * 255, 0, 255).astype(np.uint8), label


def generate_synthetic_vessels(
    root: Union[str, Path],
    num_train: int = 200,
    num_val: int = 50,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write a procedural vessel dataset in mmseg's folder layout.

    Writes ``root/img_dir/{train,val}/NNNNN.png`` (RGB images),
    ``root/ann_dir/{train,val}/NNNNN.png`` (uint8 labels: 0 background, 1 vessel) and
    ``root/meta.json`` (the arguments and the measured pixel share of each class on the
    training split). Image ``i`` of a split is drawn from
    ``numpy.random.default_rng([seed, split_id, i])``.

    Args:
        root (str | Path): output folder (created; existing files are overwritten).
        num_train (int): training images, >= 1.
        num_val (int): validation images, >= 1.
        size (int): height and width of the square images, in [32, 1024].
        seed (int): random seed, >= 0.

    Returns:
        Path: ``root``.

    Raises:
        ValueError: a count, size or seed out of range (the message names it).
    """
    num_train = check_int("num_train", num_train, 1, 10**6)
    num_val = check_int("num_val", num_val, 1, 10**6)
    size = check_int("size", size, MIN_SIZE, MAX_SIZE)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    root = Path(root)
    counts = np.zeros(len(VESSEL_CLASSES), np.int64)
    for split_id, (split, num) in enumerate((("train", num_train), ("val", num_val))):
        img_dir = root / "img_dir" / split
        ann_dir = root / "ann_dir" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(num):
            rgb, label = draw_vessel_image(np.random.default_rng([seed, split_id, i]), size, size)
            name = f"{i:05d}.png"
            cv2.imwrite(str(img_dir / name), rgb[..., ::-1])
            cv2.imwrite(str(ann_dir / name), label)
            if split == "train":
                counts += np.bincount(label.ravel(), minlength=len(VESSEL_CLASSES))
    share = counts / counts.sum()
    meta = dict(
        generator=GENERATOR,
        num_train=num_train,
        num_val=num_val,
        size=size,
        seed=seed,
        classes=list(VESSEL_CLASSES),
        train_pixel_share={k: round(float(v), 6) for k, v in zip(VESSEL_CLASSES, share)},
    )
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return root
