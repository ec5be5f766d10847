"""mmseg_marginal.analysis.region_proportions on hand-made labels, the built-in data and
CamVid."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from analysis_data import hand_dataset_config, write_config
from shared_data import require_shared_data

from mmseg_marginal.analysis.region_proportions import (
    build_dataset,
    class_counts,
    proportion_stats,
    region_proportions,
)
from mmseg_marginal.datasets import generate_synthetic_streets
from mmseg_marginal.evaluation import ProportionMetric

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hand_dataset(tmp_path):
    return hand_dataset_config(tmp_path)


def test_hand_computed(hand_dataset):
    result = region_proportions(hand_dataset)
    stats = result["stats"]
    # all pixels: image shares (3/8, 3/8, 0) and (1/8, 0, 7/8)
    np.testing.assert_allclose(stats["all"]["mregprop"], [25, 18.75, 43.75])
    np.testing.assert_allclose(stats["all"]["pooled"], [25, 18.75, 43.75])
    assert stats["all"]["void_mean"] == pytest.approx(12.5)
    # valid pixels: (3/6, 3/6, 0) and (1/8, 0, 7/8); pooled over 14 valid pixels
    np.testing.assert_allclose(stats["valid"]["mregprop"], [31.25, 25, 43.75])
    np.testing.assert_allclose(stats["valid"]["pooled"], [400 / 14, 300 / 14, 700 / 14])
    assert result["num_images"] == 2 and result["classes"] == ["a", "b", "c"]
    rows = [line for line in result["markdown"].splitlines() if line.startswith("|")]
    assert (
        rows[0] == "| Class | mRegProp (all) | pooled (all) | mRegProp (valid) | pooled (valid) |"
    )
    assert len(rows) == 2 + 3 + 2 and all(r.count("|") == 6 for r in rows)
    assert "| b | 18.75 | 18.75 | 25.00 | 21.43 |" in rows
    assert "| sum of classes | 87.50 | 87.50 | 100.00 | 100.00 |" in rows
    assert result["markdown"].startswith("## Region proportions of cfg.py, split train (2 images)")


def test_counts_are_the_metrics(hand_dataset):
    """The counts per image are those of ProportionMetric's ground-truth row (void left out)."""
    counted = class_counts(build_dataset(hand_dataset))
    np.testing.assert_array_equal(counted["counts"], [[3, 3, 0], [1, 0, 7]])
    np.testing.assert_array_equal(counted["num_all"], [8, 8])
    assert counted["counts"].dtype == np.int64
    metric = ProportionMetric(denominator="all", classwise=True)
    metric.dataset_meta = dict(classes=("a", "b", "c"))
    labels = [[[0, 0, 0, 1], [1, 1, 255, 255]], [[2, 2, 2, 2], [2, 2, 2, 0]]]
    metric.process(
        {},
        [
            dict(
                gt_sem_seg=dict(data=torch.tensor(label)[None]),
                pred_sem_seg=dict(data=torch.zeros(1, 2, 4, dtype=torch.long)),
            )
            for label in labels
        ],
    )
    metrics = metric.compute_metrics(metric.results)
    stats = proportion_stats(counted["counts"], counted["num_all"], "all")
    np.testing.assert_allclose(
        stats["mregprop"], [metrics[f"RegProp.{c}"] for c in "abc"], atol=1e-4
    )


def test_one_denominator_and_ignore_index(hand_dataset):
    result = region_proportions(hand_dataset, denominators=("valid",))
    assert set(result["stats"]) == {"valid"}
    assert "(all)" not in result["markdown"]
    # with ignore_index=0 the label 255 is neither a class nor void: one clear error
    with pytest.raises(
        ValueError,
        match=r"ann/0\.png: the ground truth holds label 255, which is neither a class .* "
        r"nor ignore_index=0",
    ):
        region_proportions(hand_dataset, ignore_index=0)


def test_bad_input(tmp_path, hand_dataset):
    with pytest.raises(FileNotFoundError, match="missing.py"):
        region_proportions(str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="no val_dataloader.dataset"):
        region_proportions(hand_dataset, split="val")
    with pytest.raises(ValueError, match="denominator must be one of"):
        region_proportions(hand_dataset, denominators=("pixels",))


def test_builtin_data_matches_generator_shares(tmp_path):
    root = generate_synthetic_streets(
        tmp_path / "streets", num_train=3, num_val=1, height=64, width=128
    )
    config = str(REPO / "configs" / "_base_" / "datasets" / "synthetic_streets.py")
    if not Path(config).is_file():
        dataset = dict(
            type="SyntheticStreetsDataset",
            data_root=str(root),
            data_prefix=dict(img_path="img_dir/train", seg_map_path="ann_dir/train"),
            pipeline=[dict(type="LoadAnnotations")],
        )
        config = write_config(tmp_path / "cfg.py", dataset)
    result = region_proportions(
        config, cfg_options={"train_dataloader.dataset.data_root": str(root)}
    )
    meta = json.loads((root / "meta.json").read_text())
    expected = [100 * meta["train_pixel_share"][c] for c in result["classes"]]
    np.testing.assert_allclose(result["stats"]["valid"]["pooled"], expected, atol=1e-4)
    assert result["num_images"] == 3


@pytest.mark.camvid
def test_camvid_train_matches_readme_shares(tmp_path):
    camvid = require_shared_data("camvid", "trainannot")
    # The README's shares: pooled pixel shares of train, void included in the total.
    text = (camvid / "README.md").read_text()
    block = text.split("void included in the total:")[1].split("\n\n")[0]
    readme = {name: float(v) for name, v in re.findall(r"(\w+) (\d+\.\d+)", block)}
    dataset = dict(
        type="CamVidDataset",
        data_root=str(camvid),
        data_prefix=dict(img_path="train", seg_map_path="trainannot"),
        pipeline=[dict(type="LoadAnnotations")],
    )
    result = region_proportions(write_config(tmp_path / "cfg.py", dataset), denominators=("all",))
    assert result["num_images"] == 367
    stats = result["stats"]["all"]
    for name, share in zip(result["classes"], stats["pooled"]):
        assert share == pytest.approx(readme[name], abs=0.006), name
    assert stats["void_pooled"] == pytest.approx(readme["void"], abs=0.006)
