"""Tiny random segmentation data in mmseg's folder layout, for tests of the tools."""

from pathlib import Path

import numpy as np
from PIL import Image


def make_tiny_dataset(root: Path, num_train: int = 4, num_val: int = 2, size: int = 64) -> Path:
    """Write ``img_dir/{train,val}`` and ``ann_dir/{train,val}`` PNGs with 4 blocky classes."""
    rng = np.random.default_rng(0)
    for split, count in (("train", num_train), ("val", num_val)):
        (root / "img_dir" / split).mkdir(parents=True, exist_ok=True)
        (root / "ann_dir" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            label = np.zeros((size, size), np.uint8)
            for cls in (1, 2, 3):
                y, x = rng.integers(0, size - 16, size=2)
                h, w = rng.integers(8, 24, size=2)
                label[y : y + h, x : x + w] = cls
            colours = np.array([[40, 40, 40], [200, 60, 60], [60, 200, 60], [60, 60, 200]])
            image = colours[label] + rng.integers(-20, 20, size=(size, size, 3))
            image = np.clip(image, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / "img_dir" / split / f"{i:03d}.png")
            Image.fromarray(label).save(root / "ann_dir" / split / f"{i:03d}.png")
    return root
