"""Datasets: CamVid (SegNet's 360x480 version), DRIVE with its field of view, procedural street
scenes.

Importing this module registers ``CamVidDataset``, ``DRIVEFOVDataset`` and
``SyntheticStreetsDataset`` in mmseg's ``DATASETS`` and the ``ApplyFOVMask`` transform in
``TRANSFORMS``; :func:`generate_synthetic_streets` writes the built-in data.
"""

from .camvid import CamVidDataset
from .checked_dataset import CheckedSegDataset
from .class_checks import class_count_mismatch, dataset_classes
from .drive_fov import ApplyFOVMask, DRIVEFOVDataset, fov_mask_path
from .synthetic_streets import SyntheticStreetsDataset, generate_synthetic_streets

__all__ = [
    "ApplyFOVMask",
    "CamVidDataset",
    "CheckedSegDataset",
    "DRIVEFOVDataset",
    "class_count_mismatch",
    "dataset_classes",
    "fov_mask_path",
    "SyntheticStreetsDataset",
    "generate_synthetic_streets",
]
