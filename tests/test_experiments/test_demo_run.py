"""mmseg_marginal.experiments.demo: the demo's losses, table, PNG and data."""

import json
import sys
from pathlib import Path

import cv2
import pytest

import mmseg_marginal.experiments.demo as demo
from mmseg_marginal.datasets import generate_synthetic_streets
from mmseg_marginal.experiments import plan_runs

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "demo" / demo.DEMO_CONFIG_NAME)


def _fake_results(preds):
    """Result dicts of the demo's three losses on two classes x (GT 20 %) and y (GT 80 %)."""
    runs = plan_runs([n for n, _ in demo.DEMO_LOSSES], [0], 2, config=CONFIG)
    results = []
    for run, pred in zip(runs, preds):
        results.append(
            dict(
                _spec=run,
                classes=["x", "y"],
                dataset="SyntheticStreetsDataset",
                num_images=2,
                iters=2,
                train_batch_size=2,
                seed=0,
                mIoU=50.0,
                mPropMAE=abs(pred - 20.0),
                per_class=dict(
                    IoU=dict(x=None if pred == 0 else 40.0, y=60.0),
                    RegProp=dict(x=20.0, y=80.0),
                    PredProp=dict(x=pred, y=100.0 - pred),
                ),
            )
        )
    return results


def test_demo_losses_are_ce_standalone_log_dice_and_ce_l1():
    runs = plan_runs([n for n, _ in demo.DEMO_LOSSES], [0], 700, config=CONFIG)
    assert [r.name for r in runs] == [
        "ce_seed0_iters700",
        "logdice_seed0_iters700",
        "ce-l1_seed0_iters700",
    ]
    ce, dice, l1 = (r.loss_cfg for r in runs)
    assert ce["type"] == "CrossEntropyLoss" and ce["loss_weight"] == 1.0
    assert dice == dict(type="ClasswiseDiceLoss", log=True, loss_weight=1.0)
    assert l1["type"] == "CEMarginalLoss" and l1["penalty"] == "l1"
    assert (l1["marginal_weight"], l1["temperature"]) == (1.0, 10.0)
    # One schedule for all three: the base config's (the loss configs only replace the loss).
    from mmengine.config import Config

    paths = [CONFIG.replace("_ce.py", f"_{n}.py") for n, _ in demo.DEMO_LOSSES]
    iters = {Config.fromfile(p).train_cfg.max_iters for p in paths}
    assert iters == {700}


def test_demo_table_layout():
    results = _fake_results((30.0, 0.0, 20.0))
    lines = demo.demo_table(results).splitlines()
    assert [c.strip() for c in lines[0].split(" | ")] == [
        "class",
        "GT %",
        "IoU CE",
        "pred % CE",
        "IoU -log Dice",
        "pred % -log Dice",
        "IoU CE + L1",
        "pred % CE + L1",
    ]
    assert [c.strip() for c in lines[2].split(" | ")] == [
        "x",
        "20.00",
        "40.0",
        "30.00",
        "-",
        "0.00",
        "40.0",
        "20.00",
    ]
    assert [c.strip() for c in lines[5].split(" | ")][:3] == ["mIoU", "", "50.0"]
    assert [c.strip() for c in lines[6].split(" | ")] == [
        "mean |pred - GT| %",
        "",
        "",
        "10.00",
        "",
        "20.00",
        "",
        "0.00",
    ]
    with pytest.raises(ValueError, match="no result"):
        demo.demo_table([])


def test_png_of_the_proportions(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    # A loss that never predicts class x (ratio 0) is drawn too.
    line = demo.write_png(_fake_results((30.0, 0.0, 20.0)), str(path))
    assert line == f"[demo] per-class GT and predicted proportions of each loss: {path}"
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (560, 800, 3)  # 10x7 inches at 80 dpi
    with pytest.raises(ValueError, match="no result"):
        demo.plot_proportions([], str(path))


def test_png_skipped_in_one_line_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    line = demo.write_png(_fake_results((30.0, 0.0, 20.0)), str(tmp_path / "p.png"))
    assert line == (
        "[demo] PNG skipped: the proportions PNG of the demo needs matplotlib, which is not "
        "installed: pip install 'mmseg_marginal[analysis]' (or pip install matplotlib)"
    )
    assert "\n" not in line and not (tmp_path / "p.png").exists()


def test_data_generated_with_other_arguments_is_generated_again(tmp_path, capsys):
    root = tmp_path / "d"
    generate_synthetic_streets(root, num_train=2, num_val=1, seed=0)  # the generator's defaults
    stale = root / "img_dir" / "train" / "00001.png"
    assert stale.is_file()
    args = dict(num_train=1, num_val=1, seed=0)
    assert demo.prepare_demo_data(str(root), **args) is None
    out = capsys.readouterr().out
    assert "generated with other num_train, thing_proportions: generating it again" in out
    meta = json.loads((root / "meta.json").read_text())
    assert meta["thing_proportions"] == demo.DEMO_THING_PROPORTIONS and meta["num_train"] == 1
    assert not stale.exists()  # the old second image is gone, not left in the split
    # Same arguments again: the data is used as it is.
    assert demo.prepare_demo_data(str(root), **args) is None
    assert "using the existing data" in capsys.readouterr().out
