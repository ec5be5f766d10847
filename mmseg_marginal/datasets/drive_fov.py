"""DRIVE with its field-of-view masks: evaluate (and train) inside the FOV, as vessel papers do.

A DRIVE fundus photograph is a disc of retina on a black background. Retinal-vessel papers
score the pixels inside the camera's field of view (FOV) only; DRIVE ships one FOV mask per
image for that purpose (Staal et al., "Ridge-based vessel segmentation in color images of the
retina", IEEE TMI 2004). In mmseg's DRIVE layout the masks lie beside the images::

    images/<split>/<stem>.png            annotations/<split>/<stem>_manual1.png
    masks/<split>/<stem>_mask.png        (1 or 255 inside the FOV, 0 outside)

Two registered components, the data untouched on disk:

- :class:`ApplyFOVMask` (``TRANSFORMS``): after ``LoadAnnotations``, sets the ground truth of
  the pixels outside the FOV to ``ignore_index`` (255), so every loss and metric leaves them
  out. The mask is ``results['fov_path']`` when the dataset provides that key (``None`` = no
  mask, the whole image), otherwise the path derived from ``img_path`` by
  :func:`fov_mask_path` (so it also works with mmseg's stock ``DRIVEDataset``).
- :class:`DRIVEFOVDataset` (``DATASETS``): mmseg's DRIVE classes and suffixes, the folder checks
  of :class:`~mmseg_marginal.datasets.CheckedSegDataset`, and the option ``fov``: ``True``
  (default) gives every sample its ``fov_path`` (all masks checked when the dataset is built);
  ``False`` gives ``fov_path=None``, i.e. the whole image, with the same pipeline.
"""

from __future__ import annotations

import os.path as osp
from typing import List, Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets import DRIVEDataset
from mmseg.registry import DATASETS, TRANSFORMS

from .checked_dataset import CheckedSegDataset


def fov_mask_path(
    img_path: str,
    img_dir: str = "images",
    mask_dir: str = "masks",
    mask_suffix: str = "_mask.png",
) -> str:
    """The FOV mask of an image in mmseg's DRIVE layout.

    ``<root>/images/<split>/<stem>.png`` -> ``<root>/masks/<split>/<stem>_mask.png``: the last
    path component equal to ``img_dir`` is replaced by ``mask_dir`` and the extension of the
    file name by ``mask_suffix``.

    Args:
        img_path (str): Path of the image.
        img_dir (str): Name of the image folder in the layout. Default: ``'images'``.
        mask_dir (str): Name of the mask folder. Default: ``'masks'``.
        mask_suffix (str): Appended to the image's stem. Default: ``'_mask.png'``.

    Returns:
        str: The mask path (not checked for existence).

    Raises:
        ValueError: if no component of ``img_path`` is ``img_dir``.
    """
    parts = img_path.replace("\\", "/").split("/")
    folders = parts[:-1]
    if img_dir not in folders:
        raise ValueError(
            f"cannot derive the field-of-view mask of {img_path!r}: no folder named "
            f"{img_dir!r} in its path (expected <root>/{img_dir}/<split>/<image>; set img_dir "
            "or give the dataset's samples a 'fov_path')"
        )
    index = len(folders) - 1 - folders[::-1].index(img_dir)
    folders[index] = mask_dir
    stem = osp.splitext(parts[-1])[0]
    return "/".join(folders + [stem + mask_suffix])


@TRANSFORMS.register_module()
class ApplyFOVMask(BaseTransform):
    """Ignore the ground truth outside the field of view.

    Required keys: ``gt_seg_map`` (after ``LoadAnnotations``), and ``fov_path`` or
    ``img_path``. Modified key: ``gt_seg_map`` (a copy; pixels where the mask is 0 become
    ``ignore_index``). Added key: ``fov_path``. A sample without annotation (no
    ``gt_seg_map`` and no ``seg_map_path``, as in the inference pipelines of
    ``mmseg.apis.inference_model`` and ``MMSegInferencer``, which drop ``LoadAnnotations``)
    passes unchanged.

    Place it right after ``LoadAnnotations``, before any geometric transform, so that the mask
    and the annotation are at the same (original) size; in mmseg's DRIVE test pipeline, which
    loads the annotation after resizing the image, that is at the end, before
    ``PackSegInputs``.

    Args:
        img_dir (str): Image folder name used to derive the mask path from ``img_path`` (see
            :func:`fov_mask_path`). Default: ``'images'``.
        mask_dir (str): Mask folder name. Default: ``'masks'``.
        mask_suffix (str): Mask file suffix. Default: ``'_mask.png'``.
        ignore_index (int): Label given to the pixels outside the FOV. Default: 255.
        backend_args (dict, optional): mmengine file backend arguments. Default: None.

    Raises:
        KeyError: the sample has a ``seg_map_path`` but no ``gt_seg_map`` (the transform is
            placed before ``LoadAnnotations``).
        FileNotFoundError: the mask file does not exist (the message names it).
        ValueError: the mask's shape differs from the annotation's (both are named).
    """

    def __init__(
        self,
        img_dir: str = "images",
        mask_dir: str = "masks",
        mask_suffix: str = "_mask.png",
        ignore_index: int = 255,
        backend_args: Optional[dict] = None,
    ) -> None:
        self.img_dir = img_dir
        self.mask_dir = mask_dir
        self.mask_suffix = mask_suffix
        self.ignore_index = ignore_index
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        """Set ``gt_seg_map`` to ``ignore_index`` where the FOV mask is 0.

        Args:
            results (dict): The sample, with ``gt_seg_map`` and ``fov_path`` or ``img_path``.

        Returns:
            dict: The sample with the masked ``gt_seg_map`` and its ``fov_path`` (``None``
            when the dataset asked for the whole image).
        """
        if "gt_seg_map" not in results:
            if results.get("seg_map_path") is not None:
                # the sample has an annotation that was not loaded yet: a misplaced transform
                raise KeyError(
                    "ApplyFOVMask needs 'gt_seg_map' of "
                    f"{results['seg_map_path']}: put it after LoadAnnotations"
                )
            return results  # no annotation (inference): nothing to mask
        if "fov_path" in results:
            path = results["fov_path"]
            if path is None:  # the dataset's whole-image option
                return results
        else:
            path = fov_mask_path(results["img_path"], self.img_dir, self.mask_dir, self.mask_suffix)
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(
                f"field-of-view mask not found: {path} (for image {results.get('img_path')})"
            )
        mask = mmcv.imfrombytes(
            fileio.get(path, backend_args=self.backend_args), flag="unchanged", backend="pillow"
        )
        if mask.ndim == 3:
            mask = mask[..., 0]
        gt = results["gt_seg_map"]
        if mask.shape != gt.shape:
            raise ValueError(
                f"field-of-view mask {path} has shape {mask.shape} but the annotation of "
                f"{results.get('img_path')} has shape {gt.shape}; apply the mask right after "
                "LoadAnnotations, before any resize or crop"
            )
        gt = np.array(gt, copy=True)
        gt[mask == 0] = self.ignore_index
        results["gt_seg_map"] = gt
        results["fov_path"] = path
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(img_dir={self.img_dir!r}, mask_dir={self.mask_dir!r}, "
            f"mask_suffix={self.mask_suffix!r}, ignore_index={self.ignore_index})"
        )


@DATASETS.register_module()
class DRIVEFOVDataset(CheckedSegDataset):
    """mmseg's DRIVE (classes ``background``, ``vessel``) with a field-of-view option.

    Same layout, suffixes (``.png``, ``_manual1.png``) and metainfo as mmseg's
    ``DRIVEDataset``, with the folder checks of ``CheckedSegDataset``. Each sample gets a
    ``fov_path`` for :class:`ApplyFOVMask`:

    - ``fov=True``: ``<data_root>/<mask_dir>/<split>/<stem><mask_suffix>``, the image folder
      ``<data_root>/images/<split>`` with ``images`` replaced by ``mask_dir``; all masks are
      checked when the dataset is built, so a missing one stops the run before training with
      one ``FileNotFoundError`` naming it;
    - ``fov=False``: ``None``, i.e. the whole image is scored (the pipeline stays the same).

    Args:
        fov (bool): Ignore the pixels outside the field of view. Default: True.
        mask_dir (str): Mask folder name, beside the image folder. Default: ``'masks'``.
        mask_suffix (str): Mask file suffix. Default: ``'_mask.png'``.
        img_suffix (str): Default: ``'.png'``.
        seg_map_suffix (str): Default: ``'_manual1.png'``.
        **kwargs: The arguments of mmseg's ``BaseSegDataset``.
    """

    METAINFO = DRIVEDataset.METAINFO

    def __init__(
        self,
        fov: bool = True,
        mask_dir: str = "masks",
        mask_suffix: str = "_mask.png",
        img_suffix: str = ".png",
        seg_map_suffix: str = "_manual1.png",
        **kwargs: object,
    ) -> None:
        if not isinstance(fov, bool):
            raise ValueError(f"fov must be True or False, got {fov!r}")
        self.fov = fov
        self.mask_dir = mask_dir
        self.mask_suffix = mask_suffix
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """List the samples like mmseg and add each one's ``fov_path``.

        Returns:
            list[dict]: mmseg's sample dicts plus ``fov_path`` (``None`` with ``fov=False``).

        Raises:
            FileNotFoundError: with ``fov=True``, naming the first missing mask and the count.
        """
        data_list = super().load_data_list()
        # <root>/<image folder>/<split> -> <root>/<mask_dir>/<split>
        img_dir = osp.normpath(self.data_prefix.get("img_path", ""))
        mask_split_dir = osp.join(
            osp.dirname(osp.dirname(img_dir)), self.mask_dir, osp.basename(img_dir)
        )
        missing = []
        for info in data_list:
            path = None
            if self.fov:
                stem = osp.relpath(info["img_path"], img_dir)[: -len(self.img_suffix)]
                path = osp.join(mask_split_dir, stem + self.mask_suffix)
                if not fileio.exists(path, backend_args=self.backend_args):
                    missing.append(path)
            info["fov_path"] = path
        if missing:
            raise FileNotFoundError(
                f"field-of-view mask not found: {missing[0]} ({len(missing)} of "
                f"{len(data_list)} images lack their '*{self.mask_suffix}' in "
                f"{osp.dirname(missing[0])}); pass fov=False to score the whole image"
            )
        return data_list
