"""tools/analysis/region_proportions.py on hand-made labels, the built-in data and CamVid."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shared_data import require_shared_data

from mmseg_marginal.datasets import generate_synthetic_streets

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "analysis" / "region_proportions.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("region_proportions", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rp = load_tool()


def write_config(path, dataset):
    path.write_text(f"train_dataloader = dict(dataset={dataset!r})\nval_dataloader = None\n")
    return str(path)


@pytest.fixture
def hand_dataset(tmp_path):
    """Two 2x4 annotations with a void (255) pixel, classes a, b, c."""
    labels = {
        "0": [[0, 0, 0, 1], [1, 1, 255, 255]],  # a 3, b 3, void 2 (of 8)
        "1": [[2, 2, 2, 2], [2, 2, 2, 0]],  # a 1, c 7
    }
    for split in ("img", "ann"):
        (tmp_path / split).mkdir()
    for name, label in labels.items():
        Image.fromarray(np.array(label, np.uint8)).save(tmp_path / "ann" / f"{name}.png")
        Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(tmp_path / "img" / f"{name}.png")
    dataset = dict(
        type="BaseSegDataset",
        data_root=str(tmp_path),
        metainfo=dict(classes=("a", "b", "c")),
        img_suffix=".png",
        seg_map_suffix=".png",
        data_prefix=dict(img_path="img", seg_map_path="ann"),
        pipeline=[dict(type="LoadAnnotations")],
    )
    return write_config(tmp_path / "cfg.py", dataset)


def test_hand_computed(hand_dataset, tmp_path):
    out = tmp_path / "table.md"
    result = rp.main([hand_dataset, "--out", str(out)])
    stats = result["stats"]
    # all pixels: image shares (3/8, 3/8, 0) and (1/8, 0, 7/8)
    np.testing.assert_allclose(stats["all"]["mregprop"], [25, 18.75, 43.75])
    np.testing.assert_allclose(stats["all"]["pooled"], [25, 18.75, 43.75])
    assert stats["all"]["void_mean"] == pytest.approx(12.5)
    # valid pixels: (3/6, 3/6, 0) and (1/8, 0, 7/8); pooled over 14 valid pixels
    np.testing.assert_allclose(stats["valid"]["mregprop"], [31.25, 25, 43.75])
    np.testing.assert_allclose(stats["valid"]["pooled"], [400 / 14, 300 / 14, 700 / 14])
    text = out.read_text()
    assert text == result["markdown"]
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert (
        rows[0] == "| Class | mRegProp (all) | pooled (all) | mRegProp (valid) | pooled (valid) |"
    )
    assert len(rows) == 2 + 3 + 2 and all(r.count("|") == 6 for r in rows)
    assert "| b | 18.75 | 18.75 | 25.00 | 21.43 |" in rows
    assert "| sum of classes | 87.50 | 87.50 | 100.00 | 100.00 |" in rows


def test_one_denominator_and_ignore_index(hand_dataset):
    result = rp.main([hand_dataset, "--denominator", "valid"])
    assert set(result["stats"]) == {"valid"}
    assert "(all)" not in result["markdown"]
    # with ignore_index=0 the label 255 is neither a class nor void: one clear error
    with pytest.raises(ValueError, match=r"ann/0\.png: label 255 is neither a class"):
        rp.main([hand_dataset, "--ignore-index", "0"])


def test_bad_input(tmp_path, hand_dataset):
    with pytest.raises(FileNotFoundError, match="missing.py"):
        rp.main([str(tmp_path / "missing.py")])
    with pytest.raises(ValueError, match="no val_dataloader.dataset"):
        rp.main([hand_dataset, "--split", "val"])


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
    result = rp.main([config, "--cfg-options", f"train_dataloader.dataset.data_root={root}"])
    meta = json.loads((root / "meta.json").read_text())
    expected = [100 * meta["train_pixel_share"][c] for c in result["classes"]]
    np.testing.assert_allclose(result["stats"]["valid"]["pooled"], expected, atol=1e-4)
    assert result["num_images"] == 3


@pytest.mark.slow
def test_runs_as_a_script(hand_dataset, tmp_path):
    out = tmp_path / "t.md"
    proc = subprocess.run(
        [sys.executable, str(TOOL), hand_dataset, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() in proc.stdout + "\n" and "| a | 25.00 |" in proc.stdout


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
    result = rp.main([write_config(tmp_path / "cfg.py", dataset), "--denominator", "all"])
    assert result["num_images"] == 367
    stats = result["stats"]["all"]
    for name, share in zip(result["classes"], stats["pooled"]):
        assert share == pytest.approx(readme[name], abs=0.006), name
    assert stats["void_pooled"] == pytest.approx(readme["void"], abs=0.006)
