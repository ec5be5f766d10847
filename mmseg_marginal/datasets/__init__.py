"""Datasets: CamVid (SegNet's 360x480 version), DRIVE with its field of view, procedural street
scenes and procedural vessel images.

Importing this module registers ``CamVidDataset``, ``DRIVEFOVDataset``,
``SyntheticStreetsDataset`` and ``SyntheticVesselsDataset`` in mmseg's ``DATASETS``, and in
mmseg's ``TRANSFORMS`` the ``ApplyFOVMask`` transform and the photometric jitter of the authors'
Cityscapes pipeline (``RandomBrightnessContrast``, ``RandomHueSaturationValue``);
:func:`generate_synthetic_streets` and :func:`generate_synthetic_vessels` write the built-in data.
"""

from .camvid import CamVidDataset
from .checked_dataset import CheckedSegDataset
from .class_checks import class_count_mismatch, dataset_classes
from .drive_fov import ApplyFOVMask, DRIVEFOVDataset, fov_mask_path
from .synthetic_streets import SyntheticStreetsDataset, generate_synthetic_streets
from .synthetic_vessels import SyntheticVesselsDataset, generate_synthetic_vessels
from .transforms import RandomBrightnessContrast, RandomHueSaturationValue

__all__ = [
    "ApplyFOVMask",
    "CamVidDataset",
    "CheckedSegDataset",
    "DRIVEFOVDataset",
    "RandomBrightnessContrast",
    "RandomHueSaturationValue",
    "SyntheticStreetsDataset",
    "SyntheticVesselsDataset",
    "class_count_mismatch",
    "dataset_classes",
    "fov_mask_path",
    "generate_synthetic_streets",
    "generate_synthetic_vessels",
]
