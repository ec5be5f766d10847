"""Datasets: CamVid (SegNet's 360x480 version) and procedural street scenes.

Importing this module registers ``CamVidDataset`` and ``SyntheticStreetsDataset``
in mmseg's ``DATASETS`` and the photometric jitter of the authors' Cityscapes pipeline
(``RandomBrightnessContrast``, ``RandomHueSaturationValue``) in mmseg's ``TRANSFORMS``;
:func:`generate_synthetic_streets` writes the built-in data.
"""

from .camvid import CamVidDataset
from .checked_dataset import CheckedSegDataset
from .synthetic_streets import SyntheticStreetsDataset, generate_synthetic_streets
from .transforms import RandomBrightnessContrast, RandomHueSaturationValue

__all__ = [
    "CamVidDataset",
    "CheckedSegDataset",
    "RandomBrightnessContrast",
    "RandomHueSaturationValue",
    "SyntheticStreetsDataset",
    "generate_synthetic_streets",
]
