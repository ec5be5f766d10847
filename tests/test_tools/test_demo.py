"""tools/demo.py: the built-in demo end to end (tiny) and its errors, through its command line."""

import json
import os
from pathlib import Path

import cv2
import pytest

from mmseg_marginal.experiments.demo import GENERATOR

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "demo.py"


def _env():
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )


@pytest.mark.slow
def test_demo_trains_three_losses_prints_the_table_and_the_png_path(tmp_path, fresh_python):
    data, work = tmp_path / "data", tmp_path / "work"
    args = ["--iters", "3", "--data-root", str(data), "--work-dir", str(work)]
    args += ["--num-train", "4", "--num-val", "2", "--batch-size", "2"]
    proc = fresh_python.run(TOOL, *args, cwd=tmp_path, timeout=900, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert f"generating 4+2 vessel images in {data}" in out
    assert len(list((data / "img_dir" / "train").glob("*.png"))) == 4
    meta = json.loads((data / "meta.json").read_text())
    assert meta["generator"] == GENERATOR
    # One progress bar per run; the Runner's logs (each run with its own loss) are in the
    # runs' work dirs, not on the screen.
    runs = ("bce_seed0_iters3", "dice_seed0_iters3", "bce-l1_seed0_iters3")
    for run in runs:
        assert f"  {run} train [########################] 3/3 100%" in out
        assert f"  {run} test  [########################] 2/2 100%" in out
    assert "Iter(train)" not in out and "Config:" not in out
    for run, item in zip(runs, ("decode.loss_ce:", "decode.loss_dice:", "decode.loss_marginal:")):
        log = (work / run / "output.log").read_text()
        assert "Iter(train) [3/3]" in log and item in log and "eta:" in log
    assert len(out.splitlines()) < 60, out
    # The three-loss table: header, the two classes and the summary rows.
    table = out[out.index("\nclass ") :]
    head = [c.strip() for c in table.splitlines()[1].split(" | ")]
    assert head == [
        "class",
        "GT %",
        "IoU CE",
        "pred % CE",
        "IoU 1 - Dice",
        "pred % 1 - Dice",
        "IoU CE + L1",
        "pred % CE + L1",
    ]
    for name in ("background", "vessel", "mIoU", "mean |pred - GT| %", "DSC (per image)"):
        assert f"\n{name} " in table
    assert "\nHD-95 px (per image) " in table
    # The PNG: its path is printed and it is a readable image.
    png = work / "results" / "proportions.png"
    assert f"[demo] per-class GT and predicted proportions of each loss: {png}" in out
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    for run in runs:
        result = json.loads((work / "results" / f"{run}.json").read_text())
        assert result["iters"] == 3 and result["num_images"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--iters", "0"], "demo: error: --iters must be >= 1, got 0"),
        (["--num-train", "0"], "demo: error: num_train must be in [1, 1000000], got 0"),
    ],
)
def test_demo_bad_input_is_one_clear_error(tmp_path, args, message, fresh_python):
    data = tmp_path / "data"
    args = args + ["--data-root", str(data), "--work-dir", str(tmp_path / "w")]
    proc = fresh_python.run(TOOL, *args, cwd=tmp_path, env=_env())
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == message
    assert not (tmp_path / "w").exists()
