"""Hand-made dataset configs and mmseg work dirs for the tests of ``mmseg_marginal.analysis``
and of ``tools/analysis/``."""

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from fresh_processes import FreshProcesses, FreshResult
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample
from PIL import Image

import mmseg_marginal  # noqa: F401  (registers ProportionMetric)

REPO = Path(__file__).resolve().parents[1]

CLASSES = ("road", "car", "sky")
GT = [[0, 0, 1, 1], [2, 2, 2, 255]]
PERFECT = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
# road predicted on one car pixel: road IoU 2/3, car IoU 1/2, sky IoU 1
ONE_WRONG = np.array([[0, 0, 0, 1], [2, 2, 2, 0]])


def write_config(path: Path, dataset: dict, split: str = "train") -> str:
    """A config whose ``<split>_dataloader`` holds ``dataset`` (and no val dataloader for
    ``'train'``)."""
    text = f"{split}_dataloader = dict(dataset={dataset!r})\n"
    if split == "train":
        text += "val_dataloader = None\n"
    path.write_text(text)
    return str(path)


def folder_dataset(root: Path, labels: dict, classes: Sequence[str]) -> dict:
    """Write each ``name -> label`` as ``ann/<name>.png`` (with a black ``img/<name>.png``) and
    return the ``BaseSegDataset`` config that reads them."""
    for sub in ("img", "ann"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, label in labels.items():
        label = np.array(label, np.uint8)
        Image.fromarray(label).save(root / "ann" / f"{name}.png")
        Image.fromarray(np.zeros((*label.shape, 3), np.uint8)).save(root / "img" / f"{name}.png")
    return dict(
        type="BaseSegDataset",
        data_root=str(root),
        metainfo=dict(classes=tuple(classes)),
        img_suffix=".png",
        seg_map_suffix=".png",
        data_prefix=dict(img_path="img", seg_map_path="ann"),
        pipeline=[dict(type="LoadAnnotations")],
    )


def hand_dataset_config(root: Path) -> str:
    """Two 2x4 annotations with void (255) pixels, classes a, b, c; a train config."""
    labels = {
        "0": [[0, 0, 0, 1], [1, 1, 255, 255]],  # a 3, b 3, void 2 (of 8)
        "1": [[2, 2, 2, 2], [2, 2, 2, 0]],  # a 1, c 7
    }
    return write_config(root / "cfg.py", folder_dataset(root, labels, ("a", "b", "c")))


def _sample(pred: np.ndarray, gt: list) -> SegDataSample:
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=torch.tensor(gt, dtype=torch.uint8)[None])
    s.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    return s


def fake_work_dir(
    root: Path,
    name: str,
    preds: Sequence[np.ndarray],
    classes: Sequence[str] = CLASSES,
    with_prop: bool = True,
    timestamp: str = "20260101_000000",
    gt: list = GT,
) -> str:
    """A work dir whose log holds what a validation writes: the metrics' tables and the
    LoggerHook's metric line (format of mmengine's LogProcessor).

    Two validations are logged, the first with an all-road prediction, the second with
    ``preds`` (each against ``gt``): readers must take the last one.
    """
    log_dir = root / name / timestamp
    log_dir.mkdir(parents=True)
    logger = MMLogger.get_instance(str(log_dir), log_file=str(log_dir / f"{timestamp}.log"))
    metrics = [dict(type="IoUMetric", iou_metrics=["mIoU"])]
    if with_prop:
        metrics.append(dict(type="ProportionMetric", denominator="all"))
    for batch in ([np.zeros_like(p) for p in preds], preds):
        evaluator = Evaluator([METRICS.build(m) for m in metrics])
        evaluator.dataset_meta = dict(classes=classes)
        evaluator.process(data_samples=[_sample(p, gt) for p in batch])
        result = evaluator.evaluate(len(batch))
        logger.info("Iter(val) [1/1]    " + "  ".join(f"{k}: {v:.4f}" for k, v in result.items()))
    for handler in logger.handlers:
        handler.flush()
    return str(root / name)


def run_analysis_tool(fresh_python: FreshProcesses, tool: str, *args: str) -> FreshResult:
    """Run ``python tools/analysis/<tool>.py args`` from the repository root, the repository on
    ``PYTHONPATH``, in a fresh process of ``fresh_python``; stdout and stderr captured."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return fresh_python.run(f"tools/analysis/{tool}.py", *args, cwd=REPO, env=env, timeout=120)
