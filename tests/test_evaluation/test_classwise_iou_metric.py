"""ClasswiseIoUMetric: mmseg's IoUMetric plus the per-class values, checked by hand."""

import math

import pytest
import torch
from mmengine.structures import PixelData

from mmseg_marginal.evaluation import ClasswiseIoUMetric


def _sample(pred, gt):
    return dict(
        pred_sem_seg=PixelData(data=torch.tensor([pred])).to_dict(),
        gt_sem_seg=PixelData(data=torch.tensor([gt])).to_dict(),
    )


def test_per_class_values_by_hand():
    metric = ClasswiseIoUMetric(iou_metrics=["mIoU"], ignore_index=255)
    metric.dataset_meta = dict(classes=("a", "b", "c"))
    # image 1: a a b b ; GT a b b 255 -> a: I1 U2, b: I1 U2
    metric.process({}, [_sample([[0, 0], [1, 1]], [[0, 1], [1, 255]])])
    # image 2: b b b a ; GT b b a a -> a: I1 U2 (+), b: I2 U3
    metric.process({}, [_sample([[1, 1], [1, 0]], [[1, 1], [0, 0]])])
    out = metric.evaluate(2)
    # totals: a: I 2, U 4 -> 50 %; b: I 3, U 5 -> 60 %; c: never present -> NaN
    assert out["IoU.a"] == 50.0 and out["IoU.b"] == 60.0 and math.isnan(out["IoU.c"])
    # Acc = I / GT area: a: 2/3, b: 3/4
    assert out["Acc.a"] == pytest.approx(66.6667) and out["Acc.b"] == 75.0
    # mmseg's own keys are unchanged: nanmean rounded to 2 decimals
    assert out["mIoU"] == 55.0 and out["aAcc"] == pytest.approx(71.43)


def test_registered_in_mmseg():
    from mmseg.registry import METRICS

    assert METRICS.get("ClasswiseIoUMetric") is ClasswiseIoUMetric
