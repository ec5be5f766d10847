r"""Per-image Dice (DSC) and 95th-percentile Hausdorff distance (HD-95) of a binary foreground.

The binary table of Liu, Dolz, Galdran, Kobbi, Ben Ayed ("The hidden label-marginal biases of
segmentation losses", Table 2) reports DSC and HD-95 of the foreground. For one image, with
``P`` the predicted and ``G`` the ground-truth foreground over the valid pixels (label not
``ignore_index``; pixels outside a field of view are ignored this way):

.. math::

    \mathrm{DSC} = \frac{2 |P \cap G|}{|P| + |G|}, \qquad
    \mathrm{HD95} = \max\big(q_{95}\{d(x, \partial G) : x \in \partial P\},\;
                             q_{95}\{d(y, \partial P) : y \in \partial G\}\big),

where the surface ``∂M = M \ erosion(M)`` (scipy's ``binary_erosion`` with its default
cross-shaped structuring element; pixels on the image border belong to the surface),
``d(x, ∂M)`` is the Euclidean distance from pixel ``x`` to the nearest surface pixel of ``M``
(``scipy.ndimage.distance_transform_edt`` of the complement of ``∂M``, with the pixel spacing as
``sampling``), and ``q_95`` is numpy's 95th percentile (linear interpolation). This is the
definition of MONAI's ``compute_hausdorff_distance(percentile=95)`` (the maximum of the two
directed percentiles, not the percentile of the pooled distances as in MedPy's ``hd95``).

Empty masks (over the valid pixels). MONAI 1.6.1 warns, and its
``compute_hausdorff_distance(percentile=95)`` returns ``nan`` when one of the two masks is empty
(the distances to an empty surface are ``inf``, and the linear percentile of ``inf`` values is
``nan``; only without ``percentile`` does it return ``inf``) and ``nan`` when both are; its
``DiceMetric`` gives ``nan`` for an empty ground truth by default. Means over images need finite
numbers, so here:

- exactly one empty: DSC = 0, HD-95 = the image diagonal
  :math:`\sqrt{((H-1) s_y)^2 + ((W-1) s_x)^2}`, the largest distance two pixels of the image can
  have, i.e. the worst finite value;
- both empty: DSC = 1 and HD-95 = 0 (nothing to find and nothing predicted).

The number of images in each case is logged and returned (``n_empty_pred``, ``n_empty_gt``,
``n_both_empty``), so that a mean that contains them can be recognised.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from scipy import ndimage

ArrayLike = Union[np.ndarray, torch.Tensor]


def _as_mask(mask: ArrayLike, name: str) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.ndim < 1:
        raise ValueError(f"{name} must have at least one dimension, got shape {mask.shape}")
    return mask.astype(bool)


def _spacing(spacing: Optional[Union[float, Sequence[float]]], ndim: int) -> np.ndarray:
    if spacing is None:
        return np.ones(ndim)
    values = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (ndim,)).copy()
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError(f"pixel spacing must be positive and finite, got {spacing!r}")
    return values


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface pixels of a boolean mask: the mask minus its erosion (cross structure)."""
    return mask & ~ndimage.binary_erosion(mask)


def directed_surface_distances(
    src: ArrayLike, dst: ArrayLike, spacing: Optional[Union[float, Sequence[float]]] = None
) -> np.ndarray:
    """Distances from every surface pixel of ``src`` to the nearest surface pixel of ``dst``.

    Args:
        src (array): Boolean mask (any number of dimensions).
        dst (array): Boolean mask of the same shape; must not be empty.
        spacing (float | sequence, optional): Pixel size per axis (e.g. mm); 1 by default.

    Returns:
        np.ndarray: One distance per surface pixel of ``src`` (empty if ``src`` is empty).

    Raises:
        ValueError: on a shape mismatch or an empty ``dst``.
    """
    src_m, dst_m = _as_mask(src, "src"), _as_mask(dst, "dst")
    if src_m.shape != dst_m.shape:
        raise ValueError(f"masks of shapes {src_m.shape} and {dst_m.shape} differ")
    dst_surface = surface(dst_m)
    if not dst_surface.any():
        raise ValueError("the destination mask is empty: no surface to measure a distance to")
    dist = ndimage.distance_transform_edt(~dst_surface, sampling=_spacing(spacing, dst_m.ndim))
    return dist[surface(src_m)]


def hausdorff_distance(
    pred: ArrayLike,
    gt: ArrayLike,
    percentile: float = 95.0,
    spacing: Optional[Union[float, Sequence[float]]] = None,
) -> float:
    """Symmetric percentile Hausdorff distance of two binary masks (HD-95 by default).

    ``max(q_p(d(∂pred -> ∂gt)), q_p(d(∂gt -> ∂pred)))`` as in the module docstring, with the
    empty cases defined there (one empty: the image diagonal; both empty: 0).

    Args:
        pred (array): Predicted foreground, boolean or 0/1, shape ``(H, W)`` (or N-D).
        gt (array): Ground-truth foreground, same shape.
        percentile (float): In [0, 100]; 100 gives the Hausdorff distance. Default: 95.
        spacing (float | sequence, optional): Pixel size per axis; distances are in its unit.

    Returns:
        float: The distance.

    Raises:
        ValueError: if the shapes differ (both are named) or ``percentile`` is outside [0, 100].
    """
    pred_m, gt_m = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if pred_m.shape != gt_m.shape:
        raise ValueError(
            f"HD-95: the prediction has shape {pred_m.shape} but the ground truth has shape "
            f"{gt_m.shape}; resize the prediction to the ground truth first"
        )
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    sampling = _spacing(spacing, gt_m.ndim)
    has_pred, has_gt = bool(pred_m.any()), bool(gt_m.any())
    if not has_pred and not has_gt:
        return 0.0
    if not has_pred or not has_gt:
        return float(np.sqrt(np.sum(((np.asarray(gt_m.shape) - 1) * sampling) ** 2)))
    d_pred = directed_surface_distances(pred_m, gt_m, sampling)
    d_gt = directed_surface_distances(gt_m, pred_m, sampling)
    return float(max(np.percentile(d_pred, percentile), np.percentile(d_gt, percentile)))


def dice_score(pred: ArrayLike, gt: ArrayLike) -> float:
    """``2 |P ∩ G| / (|P| + |G|)`` of two binary masks; 1 when both are empty.

    Raises:
        ValueError: if the shapes differ.
    """
    pred_m, gt_m = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if pred_m.shape != gt_m.shape:
        raise ValueError(
            f"DSC: the prediction has shape {pred_m.shape} but the ground truth has shape "
            f"{gt_m.shape}"
        )
    total = int(pred_m.sum()) + int(gt_m.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((pred_m & gt_m).sum()) / total


def binary_image_scores(
    pred_label: ArrayLike,
    label: ArrayLike,
    ignore_index: int = 255,
    spacing: Optional[Union[float, Sequence[float]]] = None,
    percentile: float = 95.0,
) -> Dict[str, float]:
    """DSC, HD-95 and foreground shares of one image from label maps.

    Args:
        pred_label (array): Predicted labels in {0, 1}, shape ``(H, W)``.
        label (array): Ground-truth labels in {0, 1, ignore_index}, same shape.
        ignore_index (int): Pixels with this ground-truth label are left out of both masks.
        spacing (float | sequence, optional): Pixel size for HD-95.
        percentile (float): Percentile of the Hausdorff distance. Default: 95.

    Returns:
        dict: ``dsc``, ``hd95``, ``gt_share`` and ``pred_share`` (foreground share of the valid
        pixels, 0 without valid pixels), ``gt_pixels``, ``pred_pixels``, ``valid_pixels``.

    Raises:
        ValueError: on a shape mismatch or a label outside {0, 1} (and ``ignore_index``).
    """
    pred = pred_label.detach().cpu().numpy() if isinstance(pred_label, torch.Tensor) else pred_label
    gt = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else label
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"HD-95: the prediction has shape {pred.shape} but the ground truth has shape "
            f"{gt.shape}; resize the prediction to the ground truth first"
        )
    bad_pred = np.setdiff1d(np.unique(pred), [0, 1])
    if bad_pred.size:
        raise ValueError(
            f"a binary prediction must hold labels 0 and 1 only, got {bad_pred[:5].tolist()} "
            "(is the model multi-class? BoundaryMetric scores one foreground)"
        )
    valid = gt != ignore_index
    bad_gt = np.setdiff1d(np.unique(gt[valid]), [0, 1])
    if bad_gt.size:
        raise ValueError(
            f"a binary ground truth must hold labels 0, 1 and ignore_index={ignore_index} only, "
            f"got {bad_gt[:5].tolist()}"
        )
    pred_m = (pred == 1) & valid
    gt_m = (gt == 1) & valid
    n_valid = int(valid.sum())
    return dict(
        dsc=dice_score(pred_m, gt_m),
        hd95=hausdorff_distance(pred_m, gt_m, percentile, spacing),
        gt_share=float(gt_m.sum()) / n_valid if n_valid else 0.0,
        pred_share=float(pred_m.sum()) / n_valid if n_valid else 0.0,
        gt_pixels=int(gt_m.sum()),
        pred_pixels=int(pred_m.sum()),
        valid_pixels=n_valid,
    )


@METRICS.register_module()
class BoundaryMetric(BaseMetric):
    """Per-image foreground DSC and HD-95 of a binary segmentation, averaged over images.

    Use it with mmseg's binary heads (``out_channels=1``: ``pred_sem_seg`` is the sigmoid
    thresholded at ``decode_head.threshold``) or with a 2-class softmax head (argmax)::

        val_evaluator = [dict(type='BoundaryMetric'), dict(type='ProportionMetric')]

    Definitions, surfaces and the empty-mask cases: see the module docstring. Per image the
    metric keeps ``dsc``, ``hd95``, the ground-truth and predicted foreground shares and the
    image path; :meth:`compute_metrics` returns

    - ``DSC``: mean per-image DSC, in percent; ``HD95``: mean per-image HD-95 (pixels, or the
      unit of ``spacing``); ``DSC_std``, ``HD95_std`` their standard deviations over images;
    - ``GTShare``, ``PredShare``: mean foreground share of the valid pixels, in percent;
    - ``n_empty_pred``, ``n_empty_gt``, ``n_both_empty``: image counts of the empty cases.

    After :meth:`compute_metrics` (on the rank that computes it), ``self.per_image`` holds the
    per-image records, which are also written as JSON to ``per_image_file`` when given.
    Results are gathered across processes like mmseg's ``IoUMetric`` (each rank processes its
    images; mmengine collects the lists on ``collect_device``).

    Args:
        ignore_index (int): Ground-truth label left out of both masks (e.g. outside the field
            of view). Default: 255.
        spacing (float | sequence, optional): Pixel size per axis (``(row, column)``) for HD-95
            in physical units, e.g. mm. Default: None (pixels).
        percentile (float): Percentile of the symmetric Hausdorff distance. Default: 95.
        per_image_file (str, optional): JSON file for the per-image records. Default: None.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Default: ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Default: None.

    Raises:
        ValueError: from :meth:`process`, if the dataset does not have exactly 2 classes, the
            logits have neither 1 nor 2 channels, a label is not binary, or the prediction and
            the ground truth differ in size (both shapes named).
    """

    default_prefix: Optional[str] = None

    def __init__(
        self,
        ignore_index: int = 255,
        spacing: Optional[Union[float, Sequence[float]]] = None,
        percentile: float = 95.0,
        per_image_file: Optional[str] = None,
        collect_device: str = "cpu",
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {percentile}")
        if spacing is not None:
            _spacing(spacing, 2)  # validates
        self.ignore_index = ignore_index
        self.spacing = spacing
        self.percentile = float(percentile)
        self.per_image_file = per_image_file
        self.per_image: List[dict] = []

    def _check_classes(self) -> None:
        classes = (self.dataset_meta or {}).get("classes")
        if classes is not None and len(classes) != 2:
            raise ValueError(
                f"BoundaryMetric scores a binary foreground but the dataset has {len(classes)} "
                f"classes {tuple(classes)}"
            )

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score each sample's prediction against its ground truth.

        Args:
            data_batch (dict): A batch from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs with ``pred_sem_seg.data`` (1, H, W),
                ``gt_sem_seg.data`` (1, H, W), optionally ``seg_logits.data`` (C, H, W) and
                ``img_path``.
        """
        self._check_classes()
        for data_sample in data_samples:
            logits = data_sample.get("seg_logits", None)
            if logits is not None and logits["data"].shape[0] not in (1, 2):
                raise ValueError(
                    f"BoundaryMetric scores a binary prediction but seg_logits has "
                    f"{logits['data'].shape[0]} channels (1 sigmoid logit or 2 softmax "
                    "classes expected)"
                )
            pred = data_sample["pred_sem_seg"]["data"].squeeze(0)
            label = data_sample["gt_sem_seg"]["data"].squeeze(0)
            scores = binary_image_scores(
                pred.round().long() if pred.is_floating_point() else pred,
                label,
                self.ignore_index,
                self.spacing,
                self.percentile,
            )
            scores["img_path"] = data_sample.get("img_path", None)
            self.results.append(scores)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Average the per-image scores.

        Args:
            results (list[dict]): The records of
                :func:`~mmseg_marginal.evaluation.metrics.binary_image_scores` of every image
                (of every rank), with ``img_path``.

        Returns:
            dict[str, float]: ``DSC``, ``DSC_std``, ``HD95``, ``HD95_std``, ``GTShare``,
            ``PredShare`` and the empty-case counts.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            raise ValueError("BoundaryMetric got no image to evaluate")
        dsc = np.array([r["dsc"] for r in results])
        hd = np.array([r["hd95"] for r in results])
        empty_pred = sum(r["pred_pixels"] == 0 and r["gt_pixels"] > 0 for r in results)
        empty_gt = sum(r["gt_pixels"] == 0 and r["pred_pixels"] > 0 for r in results)
        both = sum(r["gt_pixels"] == 0 and r["pred_pixels"] == 0 for r in results)
        if empty_pred or empty_gt or both:
            print_log(
                f"BoundaryMetric: of {len(results)} images, {empty_pred} have an empty "
                f"prediction, {empty_gt} an empty ground truth (DSC 0, HD-95 = image diagonal) "
                f"and {both} both empty (DSC 1, HD-95 0)",
                logger=logger,
                level=logging.WARNING,
            )
        self.per_image = [dict(r) for r in results]
        if self.per_image_file:
            with open(self.per_image_file, "w") as f:
                json.dump(self.per_image, f, indent=1)
        metrics: Dict[str, float] = OrderedDict()
        metrics["DSC"] = round(float(dsc.mean()) * 100, 4)
        metrics["DSC_std"] = round(float(dsc.std()) * 100, 4)
        metrics["HD95"] = round(float(hd.mean()), 4)
        metrics["HD95_std"] = round(float(hd.std()), 4)
        metrics["GTShare"] = round(float(np.mean([r["gt_share"] for r in results])) * 100, 4)
        metrics["PredShare"] = round(float(np.mean([r["pred_share"] for r in results])) * 100, 4)
        metrics["n_empty_pred"] = int(empty_pred)
        metrics["n_empty_gt"] = int(empty_gt)
        metrics["n_both_empty"] = int(both)
        print_log(
            f"binary foreground over {len(results)} images: DSC {metrics['DSC']:.2f} % "
            f"(std {metrics['DSC_std']:.2f}), HD-95 {metrics['HD95']:.2f} "
            f"(std {metrics['HD95_std']:.2f}), GT share {metrics['GTShare']:.2f} %, "
            f"predicted share {metrics['PredShare']:.2f} %",
            logger=logger,
        )
        return metrics


__all__ = [
    "BoundaryMetric",
    "binary_image_scores",
    "dice_score",
    "directed_surface_distances",
    "hausdorff_distance",
    "surface",
]
