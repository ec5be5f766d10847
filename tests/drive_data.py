"""Where the DRIVE tests find the real data, and a tiny DRIVE-layout fake for the others.

The real data is ``<shared data>/drive`` (see :mod:`shared_data`): tests that need it call
:func:`require_drive`, which skips with the missing path as reason, or fails under ``CI=true``.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from shared_data import require_shared_data


def require_drive() -> Path:
    """The DRIVE root (with its training images), or skip (fail under CI) naming the path."""
    return require_shared_data("drive", "images/training", "annotations/training", "masks")


def make_fake_drive(
    root: Path, split: str = "training", stems=("21_training", "22_training"), size=(20, 24)
) -> Path:
    """Write images, annotations (random 0/1) and FOV masks (a centred disc) in DRIVE's layout."""
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= (min(h, w) / 2 - 1) ** 2
    for sub in ("images", "annotations", "masks"):
        (root / sub / split).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / split / f"{stem}.png")
        label = rng.integers(0, 2, (h, w), dtype=np.uint8)
        Image.fromarray(label).save(root / "annotations" / split / f"{stem}_manual1.png")
        Image.fromarray(disc.astype(np.uint8)).save(root / "masks" / split / f"{stem}_mask.png")
    return root
