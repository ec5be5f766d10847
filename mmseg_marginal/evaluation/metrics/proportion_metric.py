"""Region-proportion metric: how far the predicted label marginal is from the ground truth's.

The paper (Liu, Dolz, Galdran, Kobbi, Ben Ayed, "The hidden label-marginal biases of
segmentation losses") compares losses by the bias they put on the label marginal, i.e. on the
proportion of an image's pixels given to each class. :class:`ProportionMetric` measures that
proportion on a validation/test set, beside mmseg's ``IoUMetric``::

    val_evaluator = [
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='ProportionMetric'),
    ]
"""

import logging
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ...losses.labels import class_counts, out_of_range_values, valid_mask

_DENOMINATORS = ("valid", "all")


def image_proportion_counts(
    pred_label: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> Tuple[torch.Tensor, torch.Tensor, int, int]:
    """Count, in one image, the pixels of each class in the ground truth and in the prediction.

    Only the valid pixels (``label != ignore_index``) are counted for both maps, so that the
    two marginals are taken over the same pixels.

    Args:
        pred_label (torch.Tensor): Predicted labels (argmax), shape (H, W), values in
            ``[0, num_classes)``.
        label (torch.Tensor): Ground-truth labels, shape (H, W), values in
            ``[0, num_classes)`` or ``ignore_index``.
        num_classes (int): Number of classes K of the dataset.
        ignore_index (int): Label of the void pixels. Default: 255.

    Returns:
        tuple: ``(gt_counts (K,), pred_counts (K,), num_valid, num_all)`` on the CPU, counts as
        int64 tensors.

    Raises:
        ValueError: if the prediction holds a label outside ``[0, K)``, if the ground truth
            holds a label outside ``[0, K)`` that is not ``ignore_index``, or if the shapes
            differ.
    """
    if pred_label.shape != label.shape:
        raise ValueError(
            f"prediction shape {tuple(pred_label.shape)} differs from the ground-truth shape "
            f"{tuple(label.shape)}"
        )
    pred_label = pred_label.long().reshape(1, -1)
    label = label.long().reshape(1, -1)
    bad = out_of_range_values(pred_label, num_classes)
    if bad:
        raise ValueError(
            f"the prediction holds label {_extreme(bad, num_classes)} but the dataset has "
            f"{num_classes} classes (labels 0..{num_classes - 1})"
        )
    valid = valid_mask(label, ignore_index)
    bad = out_of_range_values(label, num_classes, valid)
    if bad:
        raise ValueError(
            f"the ground truth holds label {_extreme(bad, num_classes)}, which is neither a class "
            f"of the dataset (0..{num_classes - 1}) nor ignore_index={ignore_index}"
        )
    gt_counts = class_counts(label, valid, num_classes)[0].cpu()
    pred_counts = class_counts(pred_label, valid, num_classes)[0].cpu()
    return gt_counts, pred_counts, int(valid.sum()), int(label.numel())


def _extreme(values: List[int], num_classes: int) -> int:
    """The out-of-range label an error names: the largest one above the classes, if any, else
    the smallest (negative) one."""
    return values[-1] if values[-1] >= num_classes else values[0]


@METRICS.register_module()
class ProportionMetric(BaseMetric):
    r"""Per-class region proportions of the ground truth and of the prediction.

    For image :math:`i` and class :math:`k`, with :math:`\Omega_i` the pixels of the image and
    :math:`V_i \subseteq \Omega_i` its valid (non-void) pixels:

    .. math::

        \hat{y}_{ik} = \frac{|\{p \in V_i : y_p = k\}|}{D_i}, \qquad
        q_{ik} = \frac{|\{p \in V_i : \arg\max_c s_{pc} = k\}|}{D_i},

    where :math:`D_i = |V_i|` (``denominator='valid'``) or :math:`D_i = |\Omega_i|`
    (``denominator='all'``). The metric reports, per class and averaged over images,

    - ``RegProp``: :math:`\frac{1}{N}\sum_i \hat{y}_{ik}`, the mean ground-truth region
      proportion (the "mRegProp" row of the paper's Table 4);
    - ``PredProp``: :math:`\frac{1}{N}\sum_i q_{ik}`, the mean predicted (argmax) proportion;
    - ``PropMAE``: :math:`\frac{1}{N}\sum_i |\hat{y}_{ik} - q_{ik}|`, the mean absolute
      proportion error,

    all in percent, printed as a per-class table like ``IoUMetric``'s. The summary
    ``mPropMAE`` is the mean of ``PropMAE`` over classes (the mean over images and classes of
    :math:`|\hat{y}_{ik} - q_{ik}|`), and ``RegPropSum`` is the sum of the ``RegProp`` row
    (100 with ``'valid'``, the mean share of valid pixels with ``'all'``).

    The paper's mRegProp row for Cityscapes sums to 88.6%: it counts the void pixels in the
    denominator, i.e. ``denominator='all'``. The default ``'valid'`` makes the ground-truth and
    predicted marginals of each image sum to one, as in the training losses. Images without a
    valid pixel have no proportion under ``'valid'`` and are left out of the means (their
    number is logged); under ``'all'`` they count as all-zero rows.

    Args:
        ignore_index (int): Label of the void pixels. Default: 255.
        denominator (str): ``'valid'`` (valid pixels of the image) or ``'all'`` (all pixels,
            as in the paper's mRegProp row). Default: ``'valid'``.
        classwise (bool): Also return the per-class values as metrics named
            ``RegProp.<class>``, ``PredProp.<class>`` and ``PropMAE.<class>`` (they then reach
            the log files and visualizer backends). Default: True.
        collect_device (str): Device used to collect the results of the ranks in distributed
            runs, ``'cpu'`` or ``'gpu'``. Default: ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Default: None.

    Raises:
        ValueError: from :meth:`process`, if a data sample's ``seg_logits`` has a channel count
            (other than 1 for a binary sigmoid head of a 2-class dataset) or its
            ``pred_sem_seg`` a label that does not fit the dataset's class list.
    """

    default_prefix: Optional[str] = None

    def __init__(
        self,
        ignore_index: int = 255,
        denominator: str = "valid",
        classwise: bool = True,
        collect_device: str = "cpu",
        prefix: Optional[str] = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if denominator not in _DENOMINATORS:
            raise ValueError(f"denominator must be one of {_DENOMINATORS}, got {denominator!r}")
        self.ignore_index = ignore_index
        self.denominator = denominator
        self.classwise = classwise

    def _num_classes(self) -> int:
        if not self.dataset_meta or "classes" not in self.dataset_meta:
            raise ValueError(
                "ProportionMetric needs dataset_meta['classes'] (set by the Runner from the "
                "dataset's metainfo, or by hand: metric.dataset_meta = dict(classes=...))"
            )
        return len(self.dataset_meta["classes"])

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Count the ground-truth and predicted pixels of each class in each sample.

        Args:
            data_batch (dict): A batch from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs with ``pred_sem_seg.data`` (1, H, W),
                ``gt_sem_seg.data`` (1, H, W) and optionally ``seg_logits.data`` (C, H, W).
        """
        num_classes = self._num_classes()
        for data_sample in data_samples:
            logits = data_sample.get("seg_logits", None)
            if logits is not None:
                channels = logits["data"].shape[0]
                # one channel is mmseg's binary sigmoid head (out_channels=1, 2 classes)
                if channels != num_classes and not (channels == 1 and num_classes == 2):
                    raise ValueError(
                        f"the prediction has {channels} channels (seg_logits) but the dataset "
                        f"has {num_classes} classes"
                    )
            pred_label = data_sample["pred_sem_seg"]["data"].squeeze(0)
            label = data_sample["gt_sem_seg"]["data"].squeeze(0).to(pred_label.device)
            self.results.append(
                image_proportion_counts(pred_label, label, num_classes, self.ignore_index)
            )

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """Average the per-image proportions and print the per-class table.

        Args:
            results (list): ``(gt_counts, pred_counts, num_valid, num_all)`` of every image
                (of every rank).

        Returns:
            dict[str, float]: ``mPropMAE``, ``RegPropSum`` and, when ``classwise``, the
            per-class ``RegProp.<c>``, ``PredProp.<c>``, ``PropMAE.<c>``, in percent.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        class_names = list(self.dataset_meta["classes"])
        if len(results) == 0:
            raise ValueError("ProportionMetric got no image to evaluate")
        gt_counts = torch.stack([r[0] for r in results]).double()
        pred_counts = torch.stack([r[1] for r in results]).double()
        num_valid = torch.tensor([r[2] for r in results], dtype=torch.float64)
        num_all = torch.tensor([r[3] for r in results], dtype=torch.float64)
        denom = num_valid if self.denominator == "valid" else num_all
        keep = denom > 0
        skipped = int((~keep).sum())
        if skipped:
            print_log(
                f"ProportionMetric: {skipped} of {len(results)} images have no pixel in the "
                f"denominator ({self.denominator!r}) and are left out of the means",
                logger=logger,
                level=logging.WARNING,
            )
        if not bool(keep.any()):
            raise ValueError(
                f"ProportionMetric: none of the {len(results)} images has a valid pixel "
                f"(ignore_index={self.ignore_index})"
            )
        gt_prop = gt_counts[keep] / denom[keep, None]
        pred_prop = pred_counts[keep] / denom[keep, None]
        reg_prop = gt_prop.mean(0).numpy() * 100
        pred_mean = pred_prop.mean(0).numpy() * 100
        mae = (gt_prop - pred_prop).abs().mean(0).numpy() * 100

        table = PrettyTable()
        table.add_column("Class", class_names)
        table.add_column("RegProp", np.round(reg_prop, 2).tolist())
        table.add_column("PredProp", np.round(pred_mean, 2).tolist())
        table.add_column("PropMAE", np.round(mae, 2).tolist())
        print_log(
            f"per class region proportions (%, mean over {int(keep.sum())} images, "
            f"denominator: {self.denominator} pixels):",
            logger,
        )
        print_log("\n" + table.get_string(), logger=logger)

        metrics: Dict[str, float] = OrderedDict()
        metrics["mPropMAE"] = round(float(mae.mean()), 4)
        metrics["RegPropSum"] = round(float(reg_prop.sum()), 4)
        if self.classwise:
            for name, values in (("RegProp", reg_prop), ("PredProp", pred_mean), ("PropMAE", mae)):
                for cls, value in zip(class_names, values):
                    metrics[f"{name}.{cls}"] = round(float(value), 4)
        return metrics
