"""tools/compare_losses.py through its command line: summary, errors."""

import json
import os
import shutil
from pathlib import Path

import pytest

from mmseg_marginal.datasets import generate_synthetic_streets

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "compare_losses.py"
CAMVID = str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py")
CONFIG = str(
    REPO / "configs" / "synthetic_streets" / "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py"
)


def _run(fresh_python, args, cwd):
    """``python tools/compare_losses.py args`` in a fresh process of ``fresh_python``."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    return fresh_python.run(TOOL, *args, cwd=cwd, env=env)


def test_summary_only_reproduces_the_camvid_summary(tmp_path, fresh_python):
    pytest.importorskip("matplotlib")
    out = tmp_path / "camvid"
    shutil.copytree(REPO / "results" / "camvid", out)
    (out / "summary.md").unlink()
    args = ["--config", CAMVID, "--losses", "ce", "ce-l1", "ce-kl", "logdice-ce"]
    args += ["--seeds", "0", "1", "2", "--iters", "8000", "--out", str(out), "--summary-only"]
    proc = _run(fresh_python, args, REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = (REPO / "results" / "camvid" / "summary.md").read_text()
    assert (out / "summary.md").read_text() == expected
    assert expected in proc.stdout
    assert "[compare_losses] finished 0, skipped 0, failed 0" in proc.stdout


def test_missing_data_root_is_one_clear_error(tmp_path, fresh_python):
    missing = tmp_path / "no_camvid"
    args = ["--config", CAMVID, "--losses", "ce", "ce-l1", "--iters", "5"]
    args += ["--out", str(tmp_path / "out"), "--data-root", str(missing)]
    proc = _run(fresh_python, args, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"compare_losses: error: image folder not found: {missing}/train "
        f"(train_dataloader.dataset.data_prefix, data_root={str(missing)!r})"
    )
    assert not (tmp_path / "out").exists()


def test_split_without_annotations_and_unknown_loss(tmp_path, fresh_python):
    data = generate_synthetic_streets(tmp_path / "d", num_train=1, num_val=1, height=64, width=128)
    shutil.rmtree(data / "ann_dir" / "val")
    args = ["--config", CONFIG, "--losses", "ce", "--iters", "5", "--out", str(tmp_path / "o")]
    proc = _run(fresh_python, args + ["--data-root", str(data)], tmp_path)
    assert proc.returncode == 2
    assert f"annotation folder not found: {data}/ann_dir/val" in proc.stderr
    proc = _run(
        fresh_python,
        ["--config", CONFIG, "--losses", "nope", "--iters", "5", "--out", "o"],
        tmp_path,
    )
    assert proc.returncode == 2
    assert "compare_losses: error: unknown loss 'nope': no config <stem>_nope.py" in proc.stderr
    assert "use one of ['ce', 'ce-l1', 'logdice']" in proc.stderr


@pytest.mark.slow
def test_the_demo_config_writes_the_demo_data_it_trains_on(tmp_path, fresh_python):
    """On the demo's config, with no data at the data root, the tool writes the demo's images
    (200 + 50, seed 0, as ``tools/demo.py``) before training, then trains and tests on them."""
    demo = str(REPO / "configs" / "demo" / "unet-s4-c16_1xb8-400_synthetic-vessels-64x64_bce.py")
    args = ["--config", demo, "--losses", "bce", "--iters", "1", "--out", "out"]
    args += ["--data-root", "data/vessels", "--work-root", "work"]
    proc = _run(fresh_python, args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = tmp_path / "data" / "vessels"
    assert "[demo] generating 200+50 vessel images in data/vessels (seed 0)" in proc.stdout
    assert len(list((root / "img_dir" / "train").glob("*.png"))) == 200
    assert len(list((root / "ann_dir" / "val").glob("*.png"))) == 50
    result = json.loads((tmp_path / "out" / "bce_seed0_iters1.json").read_text())
    assert result["dataset"] == "SyntheticVesselsDataset" and result["num_images"] == 50
