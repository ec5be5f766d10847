"""mmseg_marginal.experiments.run_comparison end to end: results, skips, failures, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from drive_data import make_fake_drive

from mmseg_marginal.datasets import generate_synthetic_streets
from mmseg_marginal.experiments import plan_runs, run_comparison, write_summary

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(
    REPO / "configs" / "synthetic_streets" / "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py"
)
DRIVE = str(REPO / "configs" / "drive_marginal" / "unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py")

# Small and fast: 64x128 images, batch 2, no dataloader workers.
TINY = {
    "train_dataloader.batch_size": 2,
    "train_dataloader.num_workers": 0,
    "train_dataloader.persistent_workers": False,
    "test_dataloader.num_workers": 0,
    "test_dataloader.persistent_workers": False,
    "default_hooks.logger.interval": 1,
}


RUN_MODULE = [sys.executable, "-m", "mmseg_marginal.experiments.worker"]
RUN_CODE = (
    "import runpy\n"
    "runpy.run_module('mmseg_marginal.experiments.worker', run_name='__main__', alter_sys=True)\n"
)


@pytest.fixture(autouse=True)
def _runs_in_fresh_processes(monkeypatch, fresh_python):
    """``run_comparison`` starts ``python -m mmseg_marginal.experiments.worker JOB RESULT`` for
    each run; here that command runs in a fresh process of ``fresh_python`` (same arguments,
    environment and working directory, its output passed on, its exit status returned).
    tests/test_tools/test_demo.py runs the comparison with real interpreters."""
    real_call = subprocess.call

    def call(cmd, *args, **kwargs):
        if args or kwargs or list(cmd[:3]) != RUN_MODULE:
            return real_call(cmd, *args, **kwargs)
        env = dict(os.environ)
        proc = fresh_python.run(None, *cmd[3:], code=RUN_CODE, env=env, cwd=os.getcwd())
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode

    monkeypatch.setattr(subprocess, "call", call)


def _read(out, name):
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow
def test_end_to_end_skip_failure_and_resume(tmp_path, capsys):
    data = generate_synthetic_streets(
        tmp_path / "data", num_train=4, num_val=2, height=64, width=128, seed=1
    )
    out, work = tmp_path / "out", tmp_path / "work"
    runs = plan_runs(["ce", "ce-l1"], [0], 3, config=CONFIG)
    kw = dict(work_root=str(work), data_root=str(data), cfg_options=TINY, ckpt_interval=3)
    outcome = run_comparison(CONFIG, runs, str(out), **kw)
    assert outcome.finished == ["ce_seed0_iters3", "ce-l1_seed0_iters3"] and not outcome.failed
    first = {r.name: (out / f"{r.name}.json").read_bytes() for r in runs}
    for r in runs:
        res = _read(out, r.name)
        assert res["iters"] == 3 and res["seed"] == 0 and res["num_images"] == 2
        assert res["spec"]["loss_cfg"] == r.loss_cfg
        assert res["classes"][0] == "road" and len(res["classes"]) == 9
        pc = res["per_class"]
        ious = [v for v in pc["IoU"].values() if v is not None]
        assert res["mIoU"] == pytest.approx(sum(ious) / len(ious), abs=1e-3)
        assert sum(pc["RegProp"].values()) == pytest.approx(100, abs=0.01)
        assert sum(pc["PredProp"].values()) == pytest.approx(100, abs=0.01)
        for c in res["classes"]:  # mean |a - b| >= |mean a - mean b|
            assert pc["PropMAE"][c] >= abs(pc["RegProp"][c] - pc["PredProp"][c]) - 1e-3
        assert res["hardware"]["cpu_count"] >= 1 and res["train_time_s"] > 0
    text = write_summary(str(out), runs)
    assert "CE + L1 (λ=1, τ=10)" in text and (out / "per_class.png").stat().st_size > 1000

    # Started again: both runs are skipped, nothing is rewritten.
    again = run_comparison(CONFIG, runs, str(out), **kw)
    assert again.skipped == [r.name for r in runs] and not again.finished
    assert {r.name: (out / f"{r.name}.json").read_bytes() for r in runs} == first

    # A failing run (its data folder is missing) keeps the earlier result.
    bad = dict(kw, cfg_options={**TINY, "train_dataloader.dataset.data_prefix.img_path": "nope"})
    failed = run_comparison(CONFIG, runs[:1], str(out), force=True, **bad)
    assert failed.failed == ["ce_seed0_iters3"]
    assert (out / "ce_seed0_iters3.json").read_bytes() == first["ce_seed0_iters3"]
    assert "earlier result kept" in capsys.readouterr().out

    # Resume: the work dir holds the final checkpoint, so only the evaluation runs again and
    # gives the same numbers from the same weights.
    (out / "ce-l1_seed0_iters3.json").unlink()
    resumed = run_comparison(CONFIG, runs, str(out), resume=True, **kw)
    assert resumed.finished == ["ce-l1_seed0_iters3"] and resumed.skipped == ["ce_seed0_iters3"]
    new = _read(out, "ce-l1_seed0_iters3")
    old = json.loads(first["ce-l1_seed0_iters3"])
    assert new["resumed"] is True and old["resumed"] is False
    assert new["per_class"] == old["per_class"]


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    """A run killed after iteration 2 (checkpoint written) fails; ``resume=True`` continues it
    from ``iter_2.pth``: it trains iterations 3-4 only and writes a resumed result."""
    import torch

    from mmseg_marginal.engine.checkpoint import load_from_local_safe

    data = generate_synthetic_streets(
        tmp_path / "data", num_train=4, num_val=2, height=64, width=128, seed=1
    )
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'tests' / 'data'}:{REPO}")
    out, work = tmp_path / "out", tmp_path / "work"
    runs = plan_runs(["ce-l1"], [0], 4, config=CONFIG)
    kw = dict(work_root=str(work), data_root=str(data), ckpt_interval=2)
    killer = tmp_path / "killed_after_2.py"
    killer.write_text(
        f"_base_ = [{CONFIG!r}]\n"
        "custom_imports = dict(imports=['mmseg_marginal', 'interrupt_hook'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='InterruptAfterIterHook', after_iter=2)]\n"
    )
    killed = run_comparison(str(killer), runs, str(out), cfg_options=TINY, **kw)
    assert killed.failed == ["ce-l1_seed0_iters4"] and not killed.finished
    run_dir = work / "ce-l1_seed0_iters4"
    assert {p.name for p in run_dir.glob("*.pth")} == {"iter_2.pth"}
    assert not (out / "ce-l1_seed0_iters4.json").exists()
    at_2 = load_from_local_safe(str(run_dir / "iter_2.pth"))
    capsys.readouterr()

    resumed = run_comparison(CONFIG, runs, str(out), cfg_options=TINY, resume=True, **kw)
    assert resumed.finished == ["ce-l1_seed0_iters4"]
    assert f"resuming from {run_dir / 'iter_2.pth'}" in capsys.readouterr().out
    result = _read(out, "ce-l1_seed0_iters4")
    assert result["resumed"] is True and result["iters"] == 4
    final = load_from_local_safe(str(run_dir / "iter_4.pth"))
    assert final["meta"]["iter"] == 4
    # the optimizer continued: AdamW's step count is 4, not 2, and the weights moved on
    steps = {float(s["step"]) for s in final["optimizer"]["state"].values()}
    assert steps == {4.0}
    assert {float(s["step"]) for s in at_2["optimizer"]["state"].values()} == {2.0}
    name = "decode_head.conv_seg.weight"
    assert not torch.equal(final["state_dict"][name], at_2["state_dict"][name])
    # the resumed process logged iterations 3 and 4 only
    logs = sorted(run_dir.glob("*/*.log"))
    assert len(logs) == 2
    last_log = logs[-1].read_text()
    assert "Iter(train) [3/4]" in last_log and "Iter(train) [4/4]" in last_log
    assert "Iter(train) [1/4]" not in last_log and "Iter(train) [1/4]" in logs[0].read_text()
    # the loss history holds the 2 iterations before the interruption and the 2 after
    assert len(final["message_hub"]["log_scalars"]["train/loss"].data[0]) == 4


@pytest.mark.slow
def test_binary_runs_report_dsc_hd95_and_per_image_shares(tmp_path):
    """A sigmoid loss and the 2-class softmax reference on a tiny DRIVE-layout set: each run
    is tested with the config's BoundaryMetric; the summary is the binary table."""
    data = tmp_path / "drive"
    make_fake_drive(data, "training", size=(40, 48))
    make_fake_drive(data, "validation", stems=("01_test", "02_test"), size=(40, 48))
    out = tmp_path / "out"
    runs = plan_runs(["bce-l1", "ce-softmax"], [0], 2, config=DRIVE)
    options = dict(TINY, **{"train_dataloader.dataset.times": 1})
    outcome = run_comparison(
        DRIVE, runs, str(out), work_root=str(tmp_path / "w"), data_root=str(data),
        cfg_options=options, ckpt_interval=2,
    )  # fmt: skip
    assert outcome.finished == [r.name for r in runs], outcome
    for run in runs:
        res = _read(out, run.name)
        assert res["classes"] == ["background", "vessel"] and res["num_images"] == 2
        assert set(res["binary"]) >= {"DSC", "HD95", "GTShare", "PredShare"}
        images = res["per_image"]
        assert sorted(Path(r["img_path"]).name for r in images) == ["01_test.png", "02_test.png"]
        gt = 100 * sum(r["gt_share"] for r in images) / 2
        assert res["binary"]["GTShare"] == pytest.approx(gt, abs=1e-3)
        assert res["per_class"]["RegProp"]["vessel"] == pytest.approx(gt, abs=1e-3)
        dsc = 100 * sum(r["dsc"] for r in images) / 2
        assert res["binary"]["DSC"] == pytest.approx(dsc, abs=1e-3)
        assert res["spec"]["head"]["out_channels"] == (2 if run.loss == "ce-softmax" else 1)
    text = write_summary(str(out), runs)
    assert "| loss | seeds | DSC (%) | HD-95 (px) |" in text and (out / "scatter.png").is_file()
