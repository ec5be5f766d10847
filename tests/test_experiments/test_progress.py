"""mmseg_marginal.experiments.progress: the progress file, the bar and its ETA; a quiet run
that fails prints the end of its output."""

import io
import json

import pytest

from mmseg_marginal.experiments import plan_runs, run_comparison
from mmseg_marginal.experiments.progress import (
    ProgressBar,
    ProgressFileHook,
    read_progress,
    write_progress,
)


def test_progress_file_round_trip_and_unreadable_files(tmp_path):
    path = str(tmp_path / "p.json")
    assert read_progress(path) is None  # not written yet
    write_progress(path, "train", 3, 8)
    assert read_progress(path) == dict(phase="train", done=3, total=8)
    assert not (tmp_path / "p.json.tmp").exists()
    (tmp_path / "p.json").write_text('{"phase": "tr')  # a partial file
    assert read_progress(path) is None
    (tmp_path / "p.json").write_text(json.dumps(dict(phase="train")))
    assert read_progress(path) is None


class _Runner:
    def __init__(self, it, max_iters, test_len=5):
        self.iter, self.max_iters, self.test_dataloader = it, max_iters, [0] * test_len


def test_hook_writes_the_iteration_and_always_the_last(tmp_path):
    path = str(tmp_path / "p.json")
    hook = ProgressFileHook(path, interval=3600.0)
    hook.before_train(_Runner(4, 10))  # a resumed run starts at its iteration
    assert read_progress(path) == dict(phase="train", done=4, total=10)
    hook.after_train_iter(_Runner(4, 10), 0)  # first write after before_train: throttled
    hook.after_train_iter(_Runner(5, 10), 0)
    assert read_progress(path)["done"] == 4
    hook.after_train_iter(_Runner(9, 10), 0)  # the last iteration is always written
    assert read_progress(path) == dict(phase="train", done=10, total=10)
    hook.before_test(_Runner(10, 10, test_len=5))
    assert read_progress(path) == dict(phase="test", done=0, total=5)
    hook.after_test_iter(_Runner(10, 10, test_len=5), 4)
    assert read_progress(path) == dict(phase="test", done=5, total=5)


def test_eta_is_the_mean_rate_since_the_first_update_times_what_is_left():
    bar = ProgressBar("run", stream=io.StringIO(), tty=True)
    bar._first = (100.0, 20)  # first seen at iteration 20, t = 100 s
    # 30 iterations in 15 s: 0.5 s each, 50 left -> 25 s
    assert bar.eta(50, 100, now=115.0) == pytest.approx(25.0)
    assert bar.eta(20, 100, now=115.0) is None  # no iteration since the first update
    bar.start = 40.0
    text = bar.render("train", 50, 100, now=115.0)
    assert text == "  run train [############............] 50/100  50%  1:15 elapsed, ETA 0:25"


def test_terminal_redraws_one_line_and_a_pipe_gets_quarters():
    tty = io.StringIO()
    bar = ProgressBar("run", stream=tty, tty=True)
    for done in range(0, 9):
        bar.update("train", done, 8)
    bar.update("test", 2, 2)
    bar.close()
    assert tty.getvalue().count("\r") == 10 and tty.getvalue().count("\n") == 1

    pipe = io.StringIO()
    bar = ProgressBar("run", stream=pipe, tty=False)
    for done in (0, 1, 3, 4, 5, 8, 8):
        bar.update("train", done, 8)
    bar.update("test", 1, 2)
    bar.update("test", 2, 2)
    bar.update("test", 2, 2)
    bar.close()
    lines = pipe.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == ["3/8", "4/8", "8/8", "2/2"]
    assert "ETA" in lines[0] and "ETA" not in lines[2]  # no ETA once training is done


def test_training_line_is_completed_when_testing_starts_before_the_last_poll():
    # a reader polling the progress file can see "train 1/3" and next "test 1/2"
    pipe = io.StringIO()
    bar = ProgressBar("run", stream=pipe, tty=False)
    bar.update("train", 1, 3)
    bar.update("test", 1, 2)
    bar.update("test", 2, 2)
    lines = pipe.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == ["1/3", "3/3", "2/2"]
    assert "[" + "#" * 24 + "] 3/3 100%" in lines[1]

    tty = io.StringIO()
    bar = ProgressBar("run", stream=tty, tty=True)
    bar.update("train", 1, 3)
    bar.update("test", 1, 2)
    bar.update("test", 2, 2)
    frames = [frame.split("]")[1].split()[0] for frame in tty.getvalue().split("\r")[1:]]
    assert frames == ["1/3", "3/3", "1/2", "2/2"]


@pytest.mark.slow
def test_quiet_run_that_fails_prints_the_end_of_its_output(tmp_path, capsys):
    """The run's process fails while building its model: no Runner output on the screen
    except the last lines of its output.log, which hold the error."""
    from pathlib import Path

    config = str(
        Path(__file__).resolve().parents[2]
        / "configs/synthetic_streets/fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py"
    )
    runs = plan_runs(["ce"], [0], 2, config=config)
    options = {"model.backbone.type": "NoSuchBackbone"}
    outcome = run_comparison(
        config,
        runs,
        str(tmp_path / "out"),
        work_root=str(tmp_path / "work"),
        cfg_options=options,
        quiet=True,
    )
    assert outcome.failed == ["ce_seed0_iters2"]
    captured = capsys.readouterr()
    log = tmp_path / "work" / "ce_seed0_iters2" / "output.log"
    assert "--- last " in captured.err and f"lines of {log} ---" in captured.err
    assert "NoSuchBackbone" in captured.err and "NoSuchBackbone" in log.read_text()
    assert "FAILED (exit code 1)" in captured.out
