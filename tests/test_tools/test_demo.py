"""tools/demo.py: the built-in demo end to end (tiny), its table, its PNG and its data."""

import importlib.util
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import cv2
import pytest

from mmseg_marginal.datasets import generate_synthetic_streets

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "demo.py"


def _load_demo():
    sys.path.insert(0, str(REPO / "tools"))
    spec = importlib.util.spec_from_file_location("demo", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_results(demo, preds):
    """Result dicts of the demo's three losses on two classes x (GT 20 %) and y (GT 80 %)."""
    cl = sys.modules["compare_losses"]
    runs = cl.plan_runs([f"{n}={p}" for n, _, p in demo.DEMO_LOSSES], [0], 2)
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


@pytest.mark.slow
def test_demo_trains_three_losses_prints_the_table_and_the_png_path(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    cmd = [sys.executable, str(TOOL), "--iters", "3", "--data-root", str(data)]
    cmd += ["--work-dir", str(work), "--num-train", "4", "--num-val", "2", "--batch-size", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert f"generating 4+2 street scenes in {data}" in out
    assert len(list((data / "img_dir" / "train").glob("*.png"))) == 4
    meta = json.loads((data / "meta.json").read_text())
    assert meta["thing_proportions"] == _load_demo().DEMO_THING_PROPORTIONS
    # mmengine's progress lines with an ETA, for the three trainings, each with its own loss.
    assert out.count("Iter(train) [3/3]") == 3 and "eta:" in out
    for item in ("decode.loss_ce:", "decode.loss_dice:", "decode.loss_ce_marginal:"):
        assert item in out
    # The three-loss table: header, 9 classes and the summary rows.
    table = out[out.index("\nclass ") :]
    head = [c.strip() for c in table.splitlines()[1].split(" | ")]
    assert head == [
        "class",
        "GT %",
        "IoU CE",
        "pred % CE",
        "IoU -log Dice",
        "pred % -log Dice",
        "IoU CE + L1",
        "pred % CE + L1",
    ]
    for name in ("road", "sidewalk", "building", "sky", "vegetation", "car", "pole", "sign"):
        assert f"\n{name} " in table
    assert "mIoU" in table and "mean |pred - GT| %" in table
    # The PNG: its path is printed and it is a readable image.
    png = work / "results" / "proportions.png"
    assert f"[demo] per-class GT and predicted proportions of each loss: {png}" in out
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    for run in ("ce_seed0_iters3", "logdice_seed0_iters3", "ce-l1_seed0_iters3"):
        result = json.loads((work / "results" / f"{run}.json").read_text())
        assert result["iters"] == 3 and result["num_images"] == 2


def test_demo_losses_are_ce_standalone_log_dice_and_ce_l1():
    demo = _load_demo()
    cl = sys.modules["compare_losses"]
    runs = cl.plan_runs([f"{n}={p}" for n, _, p in demo.DEMO_LOSSES], [0], 700)
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

    iters = {Config.fromfile(p).train_cfg.max_iters for _, _, p in demo.DEMO_LOSSES}
    assert iters == {700}


def test_demo_table_layout():
    demo = _load_demo()
    results = _fake_results(demo, (30.0, 0.0, 20.0))
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
    demo = _load_demo()
    path = tmp_path / "p.png"
    # A loss that never predicts class x (ratio 0) is drawn too.
    line = demo.write_png(_fake_results(demo, (30.0, 0.0, 20.0)), str(path))
    assert line == f"[demo] per-class GT and predicted proportions of each loss: {path}"
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (560, 800, 3)  # 10x7 inches at 80 dpi
    with pytest.raises(ValueError, match="no result"):
        demo.plot_proportions([], str(path))


def test_png_skipped_in_one_line_without_matplotlib(tmp_path, monkeypatch):
    demo = _load_demo()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    line = demo.write_png(_fake_results(demo, (30.0, 0.0, 20.0)), str(tmp_path / "p.png"))
    assert line == (
        "[demo] PNG skipped: the proportions PNG of the demo needs matplotlib, which is not "
        "installed: pip install 'mmseg_marginal[analysis]' (or pip install matplotlib)"
    )
    assert "\n" not in line and not (tmp_path / "p.png").exists()


def test_data_generated_with_other_arguments_is_generated_again(tmp_path, capsys):
    demo = _load_demo()
    root = tmp_path / "d"
    generate_synthetic_streets(root, num_train=2, num_val=1, seed=0)  # the generator's defaults
    stale = root / "img_dir" / "train" / "00001.png"
    assert stale.is_file()
    args = Namespace(data_root=str(root), num_train=1, num_val=1, seed=0)
    assert demo._prepare_data(args) is None
    out = capsys.readouterr().out
    assert "generated with other num_train, thing_proportions: generating it again" in out
    meta = json.loads((root / "meta.json").read_text())
    assert meta["thing_proportions"] == demo.DEMO_THING_PROPORTIONS and meta["num_train"] == 1
    assert not stale.exists()  # the old second image is gone, not left in the split
    # Same arguments again: the data is used as it is.
    assert demo._prepare_data(args) is None
    assert "using the existing data" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--iters", "0"], "demo: error: --iters must be >= 1, got 0"),
        (["--num-train", "0"], "demo: error: num_train must be in [1, 1000000], got 0"),
    ],
)
def test_demo_bad_input_is_one_clear_error(tmp_path, capsys, args, message):
    demo = _load_demo()
    data = tmp_path / "data"
    code = demo.main(args + ["--data-root", str(data), "--work-dir", str(tmp_path / "w")])
    assert code == 2
    assert capsys.readouterr().err.strip() == message
    assert not (tmp_path / "w").exists()
