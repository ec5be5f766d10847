"""mmseg_marginal.experiments.demo: the demo's losses, table, PNG and data."""

import json
import shutil
import sys
from pathlib import Path

import cv2
import pytest

import mmseg_marginal.experiments.demo as demo
from mmseg_marginal.datasets import generate_synthetic_streets, generate_synthetic_vessels
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
                dataset="SyntheticVesselsDataset",
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


def test_demo_losses_are_bce_dice_and_bce_l1():
    runs = plan_runs([n for n, _ in demo.DEMO_LOSSES], [0], 400, config=CONFIG)
    assert [r.name for r in runs] == [
        "bce_seed0_iters400",
        "dice_seed0_iters400",
        "bce-l1_seed0_iters400",
    ]
    bce, dice, l1 = (r.loss_cfg for r in runs)
    assert bce["type"] == "CrossEntropyLoss" and bce["use_sigmoid"] is True
    assert dice == dict(type="ClasswiseDiceLoss", log=False, use_sigmoid=True, loss_weight=1.0)
    assert [term["type"] for term in l1] == ["CrossEntropyLoss", "LabelMarginalLoss"]
    assert l1[0] == bce
    marginal = l1[1]
    assert (marginal["penalty"], marginal["temperature"], marginal["loss_weight"]) == (
        "l1",
        10.0,
        1.0,
    )
    assert marginal["use_sigmoid"] is True
    # One model and schedule for all three (the loss configs only replace the loss): a single
    # foreground logit, 400 iterations.
    from mmengine.config import Config

    paths = [CONFIG.replace("_bce.py", f"_{n}.py") for n, _ in demo.DEMO_LOSSES]
    cfgs = [Config.fromfile(p) for p in paths]
    assert {c.train_cfg.max_iters for c in cfgs} == {400}
    assert {c.model.decode_head.out_channels for c in cfgs} == {1}
    assert {c.train_dataloader.dataset.type for c in cfgs} == {"SyntheticVesselsDataset"}


def test_demo_table_layout():
    results = _fake_results((30.0, 0.0, 20.0))
    lines = demo.demo_table(results).splitlines()
    assert [c.strip() for c in lines[0].split(" | ")] == [
        "class",
        "GT %",
        "IoU CE",
        "pred % CE",
        "IoU 1 - Dice",
        "pred % 1 - Dice",
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


def test_png_of_close_proportions_has_a_linear_ratio_axis(tmp_path):
    """Every class within a factor 4 of its GT share (the binary demo): linear axis, labels."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    drawn = {}
    real_savefig = plt.Figure.savefig

    def keep_axes(fig, *args, **kwargs):
        drawn["axes"] = fig.axes
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = keep_axes
    try:
        demo.plot_proportions(_fake_results((18.0, 24.0, 20.0)), str(tmp_path / "p.png"))
    finally:
        plt.Figure.savefig = real_savefig
    top, bottom = drawn["axes"]
    assert top.get_yscale() == "log" and bottom.get_yscale() == "linear"
    low, high = bottom.get_ylim()
    assert low <= 0.8 and high >= 1.2 + 0.15  # 24 / 20 = 1.2 shows with room for its label
    labels = sorted(t.get_text() for t in bottom.texts)
    # class x: 18/20, 24/20, 20/20; class y: 82/80, 76/80, 80/80
    assert labels == sorted(["0.90", "1.20", "1.00", "1.02", "0.95", "1.00"])
    assert cv2.imread(str(tmp_path / "p.png")) is not None


def test_png_skipped_in_one_line_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    line = demo.write_png(_fake_results((30.0, 0.0, 20.0)), str(tmp_path / "p.png"))
    assert line == (
        "[demo] PNG skipped: the proportions PNG of the demo needs matplotlib, which is not "
        "installed: pip install 'mmseg_marginal[analysis]' (or pip install matplotlib)"
    )
    assert "\n" not in line and not (tmp_path / "p.png").exists()


def test_demo_table_adds_dsc_and_hd95_rows_for_binary_results():
    results = _fake_results((30.0, 10.0, 20.0))
    for r, (dsc, hd) in zip(results, ((70.0, 4.25), (72.5, 3.0), (None, 5.0))):
        r["binary"] = dict(DSC=dsc, HD95=hd)
    lines = demo.demo_table(results).splitlines()
    assert len(lines) == 2 + 2 + 1 + 4  # head, rule, 2 classes, rule, 4 summary rows
    cells = [[c.strip() for c in line.split(" | ")] for line in lines[-2:]]
    assert cells[0] == ["DSC (per image)", "", "70.0", "", "72.5", "", "-", ""]
    assert cells[1] == ["HD-95 px (per image)", "", "4.2", "", "3.0", "", "5.0", ""]
    # Without the binary block (multi-class results) there are no such rows.
    assert "DSC" not in demo.demo_table(_fake_results((30.0, 10.0, 20.0)))


def test_data_generated_with_other_arguments_is_generated_again(tmp_path, capsys):
    root = tmp_path / "d"
    generate_synthetic_vessels(root, num_train=2, num_val=1, seed=0)
    stale = root / "img_dir" / "train" / "00001.png"
    assert stale.is_file()
    args = dict(num_train=1, num_val=1, seed=0)
    assert demo.prepare_demo_data(str(root), **args) is None
    out = capsys.readouterr().out
    assert "generated with other num_train: generating it again" in out
    meta = json.loads((root / "meta.json").read_text())
    assert meta["generator"] == demo.GENERATOR and meta["num_train"] == 1
    assert not stale.exists()  # the old second image is gone, not left in the split
    # Same arguments again: the data is used as it is.
    assert demo.prepare_demo_data(str(root), **args) is None
    assert "using the existing data" in capsys.readouterr().out


def test_data_of_another_generator_is_replaced(tmp_path, capsys):
    """Street scenes left in the demo's folder (its data before) are not trained on."""
    root = tmp_path / "d"
    generate_synthetic_streets(root, num_train=1, num_val=1, seed=0)
    assert demo.prepare_demo_data(str(root), num_train=1, num_val=1, seed=0) is None
    assert "generated with other generator: generating it again" in capsys.readouterr().out
    meta = json.loads((root / "meta.json").read_text())
    assert meta["generator"] == demo.GENERATOR
    label = cv2.imread(str(root / "ann_dir" / "val" / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert label.shape == (64, 64) and set(label.ravel()) <= {0, 1}


def test_the_recorded_demo_runs_match_the_configs_and_the_readme(tmp_path):
    """results/synthetic_vessels holds the demo's run of record: its losses are the demo
    configs', its summary is regenerated byte for byte from its JSONs, and the README shows
    the table the demo prints from them."""
    record = REPO / "results" / "synthetic_vessels"
    runs = plan_runs([n for n, _ in demo.DEMO_LOSSES], [0, 1, 2], 400, config=CONFIG)
    for run in runs:
        recorded = json.loads((record / f"{run.name}.json").read_text())
        assert recorded["spec"]["loss_cfg"] == run.loss_cfg, run.name
        assert recorded["dataset"] == "SyntheticVesselsDataset" and recorded["num_images"] == 50
    pytest.importorskip("matplotlib")
    from mmseg_marginal.experiments import write_summary
    from mmseg_marginal.experiments.results import load_results

    out = tmp_path / "record"
    shutil.copytree(record, out)
    assert write_summary(str(out), runs) == (record / "summary.md").read_text()
    seed0 = [r for r in runs if r.seed == 0]
    table = demo.demo_table(load_results(str(record), seed0))
    readme = (REPO / "README.md").read_text()
    assert "\n".join(line.rstrip() for line in table.splitlines()) in readme
