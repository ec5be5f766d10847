"""tools/demo.py: the built-in demo end to end (tiny), and its table."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "demo.py"


def _load_demo():
    sys.path.insert(0, str(REPO / "tools"))
    spec = importlib.util.spec_from_file_location("demo", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_demo_generates_data_trains_both_losses_and_prints_the_table(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    cmd = [sys.executable, str(TOOL), "--iters", "4", "--data-root", str(data)]
    cmd += ["--work-dir", str(work), "--num-train", "4", "--num-val", "2", "--batch-size", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert f"generating 4+2 street scenes in {data}" in out
    assert len(list((data / "img_dir" / "train").glob("*.png"))) == 4
    # mmengine's progress lines with an ETA, for both trainings.
    assert out.count("Iter(train) [4/4]") == 2 and "eta:" in out
    assert "decode.loss_ce_marginal" in out
    # The per-class table: header, 9 classes and the summary rows.
    table = out[out.index("class ") :]
    assert "IoU CE" in table and "pred % CE + L1" in table
    for name in ("road", "sidewalk", "building", "sky", "vegetation", "car", "pole", "sign"):
        assert f"\n{name} " in table
    assert "mIoU" in table and "mean |pred - GT| %" in table
    for run in ("ce_seed0_iters4", "ce-l1_seed0_iters4"):
        assert (work / "results" / f"{run}.json").is_file()


def test_demo_table_layout():
    demo = _load_demo()
    cl = sys.modules["compare_losses"]
    runs = cl.plan_runs(["ce", "ce-l1"], [0], 2)
    results = []
    for run, iou, pred in zip(runs, (50.0, None), (30.0, 10.0)):
        results.append(
            dict(
                _spec=run,
                classes=["x", "y"],
                mIoU=50.0,
                mPropMAE=2.5,
                per_class=dict(
                    IoU=dict(x=iou, y=50.0),
                    RegProp=dict(x=20.0, y=80.0),
                    PredProp=dict(x=pred, y=100 - pred),
                ),
            )
        )
    lines = demo.demo_table(results).splitlines()
    assert [c.strip() for c in lines[0].split(" | ")] == [
        "class",
        "GT %",
        "IoU CE",
        "pred % CE",
        "IoU CE + L1",
        "pred % CE + L1",
    ]
    assert [c.strip() for c in lines[2].split(" | ")] == [
        "x",
        "20.00",
        "50.0",
        "30.00",
        "-",
        "10.00",
    ]
    assert [c.strip() for c in lines[5].split(" | ")] == ["mIoU", "", "50.0", "", "50.0", ""]
    with pytest.raises(ValueError, match="no result"):
        demo.demo_table([])


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
