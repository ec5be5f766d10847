"""tools/analysis/results_table.py on work dirs whose logs are written by the real metrics."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample
from PIL import Image

import mmseg_marginal  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "analysis" / "results_table.py"

spec = importlib.util.spec_from_file_location("results_table", TOOL)
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)

CLASSES = ("road", "car", "sky")
GT = [[0, 0, 1, 1], [2, 2, 2, 255]]


def sample(pred):
    s = SegDataSample()
    s.gt_sem_seg = PixelData(data=torch.tensor(GT, dtype=torch.uint8)[None])
    s.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    return s


def fake_work_dir(root, name, preds, classes=CLASSES, with_prop=True, timestamp="20260101_000000"):
    """A work dir whose log holds what a validation writes: the metrics' tables and the
    LoggerHook's metric line (format of mmengine's LogProcessor)."""
    log_dir = root / name / timestamp
    log_dir.mkdir(parents=True)
    logger = MMLogger.get_instance(str(log_dir), log_file=str(log_dir / f"{timestamp}.log"))
    metrics = [dict(type="IoUMetric", iou_metrics=["mIoU"])]
    if with_prop:
        metrics.append(dict(type="ProportionMetric", denominator="all"))
    # two validations (the first with an all-road prediction): the tool must read the last one
    for batch in ([np.zeros_like(p) for p in preds], preds):
        evaluator = Evaluator([METRICS.build(m) for m in metrics])
        evaluator.dataset_meta = dict(classes=classes)
        evaluator.process(data_samples=[sample(p) for p in batch])
        result = evaluator.evaluate(len(batch))
        logger.info("Iter(val) [1/1]    " + "  ".join(f"{k}: {v:.4f}" for k, v in result.items()))
    for handler in logger.handlers:
        handler.flush()
    return str(root / name)


PERFECT = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
# road predicted on one car pixel: road IoU 2/3, car IoU 1/2, sky IoU 1
ONE_WRONG = np.array([[0, 0, 0, 1], [2, 2, 2, 0]])


def test_table_values(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    b = fake_work_dir(tmp_path, "b", [ONE_WRONG], with_prop=False)
    out_md, out_png = tmp_path / "t.md", tmp_path / "t.png"
    res = rt.main(
        [a, b, "--names", "CE", "Ours(L1)", "--out-md", str(out_md), "--out-png", str(out_png)]
    )
    lines = out_md.read_text().splitlines()
    assert lines[0] == "| Method | road | car | sky | mIoU |"
    # mRegProp with void counted (8 pixels): road 2/8, car 2/8, sky 3/8
    assert lines[2] == "| mRegProp | 25.0 | 25.0 | 37.5 | - |"
    assert lines[3] == "| CE | 100.0 | 100.0 | 100.0 | 100.0 |"
    assert lines[4] == "| Ours(L1) | 66.7 | 50.0 | 100.0 | 72.2 |"
    assert "ProportionMetric of " + a + " (all pixels)" in lines[-1]
    assert res["rows"][1][2] == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3, abs=0.01)
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.size[0] > 200
        assert np.asarray(image.convert("L")).std() > 5


def test_latest_log_and_last_evaluation(tmp_path):
    fake_work_dir(tmp_path, "a", [ONE_WRONG], timestamp="20260101_000000")
    fake_work_dir(tmp_path, "a2", [PERFECT], timestamp="20260102_000000")
    # move the newer run into work dir a: the tool must read the newer timestamp
    (tmp_path / "a2" / "20260102_000000").rename(tmp_path / "a" / "20260102_000000")
    run = rt.read_work_dir(str(tmp_path / "a"))
    assert run["iou"] == [100.0, 100.0, 100.0] and run["log"].endswith("20260102_000000.log")
    assert run["regprop"] == [25.0, 25.0, 37.5] and run["regprop_denominator"] == "all"


def test_no_regprop_row_is_said(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT], with_prop=False)
    res = rt.collect_results([a])
    assert res["regprop"] is None and "no mRegProp row" in res["warnings"][0]
    assert "mRegProp" not in rt.format_markdown(res)
    assert "| a | 100.0 | 100.0 | 100.0 | 100.0 |" in rt.format_markdown(res)


def test_nan_class(tmp_path):
    # no car anywhere: IoUMetric prints nan, the table too; mIoU as IoUMetric reports it
    gt_free = np.array([[0, 0, 0, 0], [2, 2, 2, 0]])
    global GT
    old, GT = GT, gt_free.tolist()
    try:
        a = fake_work_dir(tmp_path, "a", [gt_free], with_prop=False)
    finally:
        GT = old
    run = rt.read_work_dir(a)
    assert math.isnan(run["iou"][1]) and run["miou"] == 100.0
    assert "| a | 100.0 | nan | 100.0 | 100.0 |" in rt.format_markdown(rt.collect_results([a]))


def test_work_dir_without_results(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    empty = tmp_path / "empty" / "20260101_000000"
    empty.mkdir(parents=True)
    (empty / "20260101_000000.log").write_text("2026/01/01 - mmengine - INFO - Iter(train) ...\n")
    with pytest.raises(
        FileNotFoundError, match=f"no evaluation results in work dir {empty.parent}"
    ):
        rt.main([a, str(empty.parent)])
    with pytest.raises(FileNotFoundError, match="work dir not found: .*missing"):
        rt.main([a, str(tmp_path / "missing")])


def test_other_class_list(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    b = fake_work_dir(tmp_path, "b", [PERFECT], classes=("road", "vehicle", "sky"))
    with pytest.raises(ValueError) as error:
        rt.main([a, b])
    message = str(error.value)
    assert b in message and "'vehicle'" in message and "'car'" in message


def test_names_must_match(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    with pytest.raises(ValueError, match="2 names for 1 work dirs"):
        rt.main([a, "--names", "x", "y"])


def test_regprop_from_a_dataset_config(tmp_path):
    """--regprop-config computes the row with region_proportions.py (all pixels)."""
    for sub in ("img", "ann"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    Image.fromarray(np.array(GT, np.uint8)).save(tmp_path / "data" / "ann" / "0.png")
    Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(tmp_path / "data" / "img" / "0.png")
    dataset = dict(
        type="BaseSegDataset",
        data_root=str(tmp_path / "data"),
        metainfo=dict(classes=CLASSES),
        img_suffix=".png",
        seg_map_suffix=".png",
        data_prefix=dict(img_path="img", seg_map_path="ann"),
        pipeline=[dict(type="LoadAnnotations")],
    )
    config = tmp_path / "cfg.py"
    config.write_text(f"val_dataloader = dict(dataset={dataset!r})\n")
    a = fake_work_dir(tmp_path, "a", [PERFECT], with_prop=False)
    res = rt.main([a, "--regprop-config", str(config)])
    assert res["regprop"] == pytest.approx([25.0, 25.0, 37.5])
    assert "mRegProp (%) from cfg.py (val, all pixels)" in res["markdown"]
    dataset["metainfo"] = dict(classes=("road", "car", "tree"))
    config.write_text(f"val_dataloader = dict(dataset={dataset!r})\n")
    with pytest.raises(ValueError, match="cfg.py has other classes than the work dirs"):
        rt.main([a, "--regprop-config", str(config)])
