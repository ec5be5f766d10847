"""mmseg's ``IoUMetric`` that also returns the per-class values it prints."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ClasswiseIoUMetric(IoUMetric):
    """``IoUMetric`` whose result also holds the per-class metrics, not only their means.

    mmseg's ``IoUMetric`` prints the per-class table and returns the class means (``mIoU``,
    ``mAcc``...) rounded to two decimals. This metric returns the same keys, with the same
    values, plus ``<metric>.<class>`` for every metric of the table (``IoU.car``,
    ``Acc.car``...) in percent rounded to four decimals (``nan`` for a class that has neither
    ground truth nor prediction, as in mmseg's table), so that they reach the log files,
    visualizer backends and ``Runner.test()``'s return value. The arguments are
    ``IoUMetric``'s::

        test_evaluator = dict(type='ClasswiseIoUMetric', iou_metrics=['mIoU'])
    """

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """mmseg's summary metrics plus the per-class values.

        Args:
            results (list): ``(intersect, union, pred_area, label_area)`` per image, as
                ``IoUMetric.process`` stores them.

        Returns:
            dict[str, float]: ``aAcc``, ``m<metric>`` (as ``IoUMetric``) and
            ``<metric>.<class>``.
        """
        metrics: Dict[str, float] = OrderedDict(super().compute_metrics(results))
        totals = [sum(area) for area in zip(*results)]
        per_class = self.total_area_to_metrics(*totals, self.metrics, self.nan_to_num, self.beta)
        per_class.pop("aAcc", None)
        for key, values in per_class.items():
            values = np.asarray(values.cpu() if hasattr(values, "cpu") else values, np.float64)
            for cls, value in zip(self.dataset_meta["classes"], values):
                metrics[f"{key}.{cls}"] = (
                    math.nan if math.isnan(value) else round(float(value) * 100, 4)
                )
        return metrics
