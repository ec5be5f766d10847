"""Datasets: CamVid (SegNet's 360x480 version), DRIVE with its field of view, procedural street
scenes.

Importing this module registers ``CamVidDataset``, ``DRIVEFOVDataset`` and
``SyntheticStreetsDataset`` in mmseg's ``DATASETS``, and in mmseg's ``TRANSFORMS`` the
``ApplyFOVMask`` transform and the photometric jitter of the authors' Cityscapes pipeline
(``RandomBrightnessContrast``, ``RandomHueSaturationValue``); :func:`generate_synthetic_streets`
writes the built-in data.
"""

from .camvid import CamVidDataset
from .checked_dataset import CheckedSegDataset
from .class_checks import class_count_mismatch, dataset_classes
from .drive_fov import ApplyFOVMask, DRIVEFOVDataset, fov_mask_path
from .synthetic_streets import SyntheticStreetsDataset, generate_synthetic_streets
from .transforms import RandomBrightnessContrast, RandomHueSaturationValue

__all__ = [
    "ApplyFOVMask",
    "CamVidDataset",
    "CheckedSegDataset",
    "DRIVEFOVDataset",
    "RandomBrightnessContrast",
    "RandomHueSaturationValue",
    "SyntheticStreetsDataset",
    "class_count_mismatch",
    "dataset_classes",
    "fov_mask_path",
    "generate_synthetic_streets",
]
