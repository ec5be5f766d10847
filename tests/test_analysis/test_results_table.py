"""mmseg_marginal.analysis.results_table on work dirs whose logs are written by the real
metrics."""

import math

import numpy as np
import pytest
from analysis_data import (
    CLASSES,
    GT,
    ONE_WRONG,
    PERFECT,
    fake_work_dir,
    folder_dataset,
    write_config,
)
from PIL import Image

from mmseg_marginal.analysis.results_table import (
    IOU_MARKER,
    collect_results,
    format_markdown,
    parse_tables,
    plot_table,
    read_work_dir,
)


def test_table_values(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    b = fake_work_dir(tmp_path, "b", [ONE_WRONG], with_prop=False)
    res = collect_results([a, b], names=["CE", "Ours(L1)"])
    assert res["warnings"] == []
    lines = format_markdown(res).splitlines()
    assert lines[0] == "| Method | road | car | sky | mIoU |"
    # mRegProp with void counted (8 pixels): road 2/8, car 2/8, sky 3/8
    assert lines[2] == "| mRegProp | 25.0 | 25.0 | 37.5 | - |"
    assert lines[3] == "| CE | 100.0 | 100.0 | 100.0 | 100.0 |"
    assert lines[4] == "| Ours(L1) | 66.7 | 50.0 | 100.0 | 72.2 |"
    assert "ProportionMetric of " + a + " (all pixels)" in lines[-1]
    assert res["rows"][1][2] == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3, abs=0.01)
    out_png = plot_table(res, str(tmp_path / "fig" / "t.png"))
    with Image.open(out_png) as image:
        assert image.format == "PNG" and image.size[0] > 200
        assert np.asarray(image.convert("L")).std() > 5


def test_parse_tables():
    text = "\n".join(
        [
            "INFO - per class results:",
            "+-------+-------+",
            "| Class |  IoU  |",
            "+-------+-------+",
            "|  road | 66.67 |",
            "|  car  |  nan  |",
            "+-------+-------+",
            "INFO - Iter(val) [1/1]  mIoU: 66.6700",
        ]
    )
    assert parse_tables(text, IOU_MARKER) == [
        (0, {"Class": ["road", "car"], "IoU": ["66.67", "nan"]})
    ]
    assert parse_tables(text, "per class region proportions") == []


def test_latest_log_and_last_evaluation(tmp_path):
    fake_work_dir(tmp_path, "a", [ONE_WRONG], timestamp="20260101_000000")
    fake_work_dir(tmp_path, "a2", [PERFECT], timestamp="20260102_000000")
    # move the newer run into work dir a: the reader must take the newer timestamp
    (tmp_path / "a2" / "20260102_000000").rename(tmp_path / "a" / "20260102_000000")
    run = read_work_dir(str(tmp_path / "a"))
    assert run["iou"] == [100.0, 100.0, 100.0] and run["log"].endswith("20260102_000000.log")
    assert run["regprop"] == [25.0, 25.0, 37.5] and run["regprop_denominator"] == "all"


def test_no_regprop_row_is_said(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT], with_prop=False)
    res = collect_results([a])
    assert res["regprop"] is None and "no mRegProp row" in res["warnings"][0]
    assert "mRegProp" not in format_markdown(res)
    assert "| a | 100.0 | 100.0 | 100.0 | 100.0 |" in format_markdown(res)


def test_nan_class(tmp_path):
    # no car anywhere: IoUMetric prints nan, the table too; mIoU as IoUMetric reports it
    gt_free = np.array([[0, 0, 0, 0], [2, 2, 2, 0]])
    a = fake_work_dir(tmp_path, "a", [gt_free], with_prop=False, gt=gt_free.tolist())
    run = read_work_dir(a)
    assert math.isnan(run["iou"][1]) and run["miou"] == 100.0
    assert "| a | 100.0 | nan | 100.0 | 100.0 |" in format_markdown(collect_results([a]))


def test_work_dir_without_results(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    empty = tmp_path / "empty" / "20260101_000000"
    empty.mkdir(parents=True)
    (empty / "20260101_000000.log").write_text("2026/01/01 - mmengine - INFO - Iter(train) ...\n")
    with pytest.raises(
        FileNotFoundError, match=f"no evaluation results in work dir {empty.parent}"
    ):
        collect_results([a, str(empty.parent)])
    with pytest.raises(FileNotFoundError, match="work dir not found: .*missing"):
        collect_results([a, str(tmp_path / "missing")])


def test_other_class_list(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    b = fake_work_dir(tmp_path, "b", [PERFECT], classes=("road", "vehicle", "sky"))
    with pytest.raises(ValueError) as error:
        collect_results([a, b])
    message = str(error.value)
    assert b in message and "'vehicle'" in message and "'car'" in message


def test_names_must_match(tmp_path):
    a = fake_work_dir(tmp_path, "a", [PERFECT])
    with pytest.raises(ValueError, match="2 names for 1 work dirs"):
        collect_results([a], names=["x", "y"])


def test_regprop_from_a_dataset_config(tmp_path):
    """regprop_config computes the row with region_proportions (all pixels)."""
    dataset = folder_dataset(tmp_path / "data", {"0": GT}, CLASSES)
    config = write_config(tmp_path / "cfg.py", dataset, split="val")
    a = fake_work_dir(tmp_path, "a", [PERFECT], with_prop=False)
    res = collect_results([a], regprop_config=config)
    assert res["regprop"] == pytest.approx([25.0, 25.0, 37.5])
    assert "mRegProp (%) from cfg.py (val, all pixels)" in format_markdown(res)
    dataset["metainfo"] = dict(classes=("road", "car", "tree"))
    write_config(tmp_path / "cfg.py", dataset, split="val")
    with pytest.raises(ValueError, match="cfg.py has other classes than the work dirs"):
        collect_results([a], regprop_config=config)


def _two_runs_best_first(tmp_path) -> str:
    """Work dir ``a``: an older log whose last evaluation is perfect (mIoU 100) and a newer one
    whose last is ONE_WRONG (mIoU 72.2); each log also has an all-road evaluation first."""
    fake_work_dir(tmp_path, "a", [PERFECT], timestamp="20260101_000000")
    fake_work_dir(tmp_path, "a2", [ONE_WRONG], timestamp="20260102_000000")
    (tmp_path / "a2" / "20260102_000000").rename(tmp_path / "a" / "20260102_000000")
    return str(tmp_path / "a")


def test_best_evaluation_is_the_highest_miou_over_all_logs(tmp_path):
    a = _two_runs_best_first(tmp_path)
    last = read_work_dir(a)
    assert last["iou"] == [66.67, 50.0, 100.0] and last["log"].endswith("20260102_000000.log")
    assert last["evaluations"] == 2
    best = read_work_dir(a, select="best")
    assert best["iou"] == [100.0, 100.0, 100.0] and best["miou"] == 100.0
    assert best["log"].endswith("20260101_000000.log") and best["evaluations"] == 4
    assert best["regprop"] == [25.0, 25.0, 37.5]
    res = collect_results([a], names=["CE"], select="best")
    text = format_markdown(res)
    assert "| CE | 100.0 | 100.0 | 100.0 | 100.0 |" in text
    assert "best evaluation (highest mIoU: the best validation epoch" in text
    assert "last evaluation" in format_markdown(collect_results([a], names=["CE"]))
    with pytest.raises(ValueError, match="select must be 'last' or 'best', got 'first'"):
        read_work_dir(a, select="first")


def test_best_evaluation_names_its_training_iteration(tmp_path):
    """In a training log each validation follows the train iterations that precede it."""
    a = fake_work_dir(tmp_path, "a", [ONE_WRONG])
    (log,) = (tmp_path / "a").glob("*/*.log")
    lines, k = [], 0
    for line in log.read_text().splitlines():
        if IOU_MARKER in line:
            k += 1
            lines.append(f"2026/01/01 - mmengine - INFO - Iter(train) [{372 * k:5d}/37200]  lr: 1")
        lines.append(line)
    log.write_text("\n".join(lines) + "\n")
    best = read_work_dir(a, select="best")
    assert best["iteration"] == 744 and best["miou"] == pytest.approx(72.22, abs=0.01)
    assert read_work_dir(str(tmp_path / "a"))["iteration"] == 744
