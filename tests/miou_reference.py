"""mIoU computed from confusion counts, independently of mmseg's IoUMetric, for exact checks.

IoUMetric's definition: pixels labelled ``ignore_index`` are left out; per class,
``IoU_k = TP_k / (pred_k + label_k - TP_k)`` summed over all images; classes with an empty
union (NaN) are left out of the mean; the mean is reported in percent rounded to 2 decimals.
"""

from __future__ import annotations

import numpy as np


def confusion_counts(
    label: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """``(K, K)`` int64 counts, row = ground-truth class, column = predicted class, over the
    pixels whose label is not ``ignore_index``."""
    label = np.asarray(label).astype(np.int64).ravel()
    pred = np.asarray(pred).astype(np.int64).ravel()
    if label.shape != pred.shape:
        raise ValueError(f"label has {label.size} pixels, prediction {pred.size}")
    valid = label != ignore_index
    if not (0 <= label[valid]).all() or not (label[valid] < num_classes).all():
        raise ValueError(f"labels outside [0, {num_classes}): {np.unique(label[valid])}")
    flat = num_classes * label[valid] + pred[valid]
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def miou_percent(conf: np.ndarray) -> float:
    """mIoU in percent, rounded to 2 decimals, over the classes with a non-empty union."""
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore"):
        return float(np.round(np.nanmean(tp / union) * 100, 2))


def predicted_classes(conf: np.ndarray) -> int:
    """How many classes the prediction contains (on valid pixels)."""
    return int((conf.sum(0) > 0).sum())
