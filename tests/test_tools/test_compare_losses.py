"""tools/compare_losses.py: run planning, tables, and resumable end-to-end comparisons."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from mmseg_marginal.datasets import generate_synthetic_streets

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "compare_losses.py"
CONFIG = str(REPO / "configs" / "demo" / "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py")

spec = importlib.util.spec_from_file_location("compare_losses", TOOL)
cl = importlib.util.module_from_spec(spec)
sys.modules["compare_losses"] = cl
spec.loader.exec_module(cl)

# Small and fast: 64x128 images, batch 2, no dataloader workers.
TINY = {
    "train_dataloader.batch_size": 2,
    "train_dataloader.num_workers": 0,
    "train_dataloader.persistent_workers": False,
    "test_dataloader.num_workers": 0,
    "test_dataloader.persistent_workers": False,
    "default_hooks.logger.interval": 1,
}


def test_plan_runs_orders_seeds_outermost_and_names_runs():
    runs = cl.plan_runs(["ce", "ce-l1"], [0, 1], 100)
    assert [r.name for r in runs] == [
        "ce_seed0_iters100",
        "ce-l1_seed0_iters100",
        "ce_seed1_iters100",
        "ce-l1_seed1_iters100",
    ]
    assert runs[1].loss_cfg["type"] == "CEMarginalLoss"
    assert runs[1].loss_cfg["penalty"] == "l1" and runs[1].loss_cfg["marginal_weight"] == 1.0


def test_sweep_lambda_expands_marginal_losses_only():
    runs = cl.plan_runs(["ce", "ce-kl", "logdice-ce"], [0], 10, sweep_lambda=[0.1, 3])
    assert [r.name for r in runs] == [
        "ce_seed0_iters10",
        "ce-kl_lam0.1_seed0_iters10",
        "ce-kl_lam3_seed0_iters10",
        "logdice-ce_seed0_iters10",
    ]
    assert [r.loss_cfg["marginal_weight"] for r in runs[1:3]] == [0.1, 3.0]
    assert all(r.loss_cfg["penalty"] == "kl" for r in runs[1:3])
    # The preset itself is not modified.
    assert cl.LOSS_PRESETS["ce-kl"][1]["marginal_weight"] == 0.1


def test_loss_from_a_config_file():
    path = REPO / "configs" / "demo" / "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce-l1.py"
    (run,) = cl.plan_runs([f"mine={path}"], [3], 5)
    assert run.name == "mine_seed3_iters5"
    assert run.loss_cfg["type"] == "CEMarginalLoss" and run.loss_cfg["temperature"] == 10.0


@pytest.mark.parametrize(
    "args, match",
    [
        ((["nope"], [0], 10), "unknown loss 'nope'"),
        (([], [0], 10), "no loss given"),
        ((["ce"], [], 10), "no seed given"),
        ((["ce"], [0, 0], 10), "duplicate seeds"),
        ((["ce"], [0], 0), "--iters must be >= 1"),
        ((["ce", "ce"], [0], 10), "duplicate loss names"),
    ],
)
def test_plan_runs_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        cl.plan_runs(*args)


def test_sweep_without_marginal_loss_is_refused():
    with pytest.raises(ValueError, match="--sweep-lambda needs a marginal loss"):
        cl.plan_runs(["ce", "dice"], [0], 10, sweep_lambda=[1.0])


def _fake_result(spec, ious, mae, gt=(50.0, 30.0, 15.0, 5.0)):
    classes = ["a", "b", "c", "d"]
    return dict(
        run=spec.name,
        _spec=spec,
        config="x.py",
        dataset="D",
        data_root="r",
        crop_size=[8, 8],
        train_batch_size=2,
        num_images=3,
        iters=spec.iters,
        seed=spec.seed,
        train_time_s=120.0,
        hardware=dict(cpu="cpu", cpu_count=2, device="cpu"),
        classes=classes,
        small_classes=None,
        mIoU=sum(v for v in ious if v is not None) / len([v for v in ious if v is not None]),
        mPropMAE=sum(mae) / 4,
        per_class=dict(
            IoU=dict(zip(classes, ious)),
            PropMAE=dict(zip(classes, mae)),
            PredProp=dict(zip(classes, gt)),
            RegProp=dict(zip(classes, gt)),
        ),
    )


def test_summary_means_and_sample_std_over_seeds():
    runs = cl.plan_runs(["ce", "ce-l1"], [0, 1], 7)
    results = [
        _fake_result(runs[0], [80, 60, 10, 0], [1, 2, 3, 4]),
        _fake_result(runs[1], [90, 70, 20, 10], [1, 1, 1, 1]),
        _fake_result(runs[2], [70, 40, 30, None], [3, 2, 1, 0]),
    ]
    rows = cl.aggregate(results)
    assert [r["group"] for r in rows] == ["ce", "ce-l1"]
    ce = rows[0]
    assert ce["seeds"] == [0, 1]
    assert ce["iou"]["a"] == pytest.approx((75.0, math.sqrt(50.0)))
    assert ce["iou"]["d"] == (0.0, None)  # one seed has no IoU for d
    # Small classes default to the 4 smallest GT proportions; mean over seeds of the means.
    assert ce["small_classes"] == ["d", "c", "b", "a"]
    assert ce["small_miou"][0] == pytest.approx((37.5 + 140 / 3) / 2)
    assert rows[1]["iou"]["b"] == (70.0, None)
    text = cl.summary_markdown(results, runs)
    assert "| CE | 2 | 75.0 ± 7.1 | 50.0 ± 14.1 | 20.0 ± 14.1 | 0.0 |" in text
    assert "pending: ce-l1_seed1_iters7" in text
    assert "| GT | 50.0 | 30.0 | 15.0 | 5.0 |" in text
    assert "Mean training time per run: ce 2 min, ce-l1 2 min." in text


def test_summary_leaves_resumed_runs_out_of_the_training_time():
    runs = cl.plan_runs(["ce", "ce-l1"], [0, 1], 7)
    results = [_fake_result(spec, [80, 60, 10, 0], [1, 2, 3, 4]) for spec in runs[:3]]
    results[1]["train_time_s"] = 600.0
    results[0]["resumed"] = True
    results[0]["train_time_s"] = 60.0  # the last part only
    results[2]["train_time_s"] = 300.0
    rows = cl.aggregate(results)
    assert rows[0]["train_time_s"] == (300.0, None)
    text = cl.summary_markdown(results, runs)
    assert "ce 5 min, ce-l1 10 min." in text
    assert "not averaged): ce_seed0_iters7." in text
    results[2]["resumed"] = True
    text = cl.summary_markdown(results, runs)
    assert "ce not measured (resumed), ce-l1 10 min." in text


def test_small_classes_given_must_exist():
    (run,) = cl.plan_runs(["ce"], [0], 7)
    result = _fake_result(run, [1, 2, 3, 4], [0, 0, 0, 0])
    assert cl.small_class_names(result, ["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"small classes \['z'\]"):
        cl.small_class_names(result, ["z"])


def _read(out, name):
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow
def test_end_to_end_skip_failure_and_resume(tmp_path, capsys):
    data = generate_synthetic_streets(
        tmp_path / "data", num_train=4, num_val=2, height=64, width=128, seed=1
    )
    out, work = tmp_path / "out", tmp_path / "work"
    runs = cl.plan_runs(["ce", "ce-l1"], [0], 3)
    kw = dict(work_root=str(work), data_root=str(data), cfg_options=TINY, ckpt_interval=3)
    outcome = cl.run_comparison(CONFIG, runs, str(out), **kw)
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
    text = cl.write_summary(str(out), runs)
    assert "CE + L1 (λ=1, τ=10)" in text and (out / "per_class.png").stat().st_size > 1000

    # Started again: both runs are skipped, nothing is rewritten.
    again = cl.run_comparison(CONFIG, runs, str(out), **kw)
    assert again.skipped == [r.name for r in runs] and not again.finished
    assert {r.name: (out / f"{r.name}.json").read_bytes() for r in runs} == first

    # A failing run (its data folder is missing) keeps the earlier result.
    bad = dict(kw, cfg_options={**TINY, "train_dataloader.dataset.data_prefix.img_path": "nope"})
    failed = cl.run_comparison(CONFIG, runs[:1], str(out), force=True, **bad)
    assert failed.failed == ["ce_seed0_iters3"]
    assert (out / "ce_seed0_iters3.json").read_bytes() == first["ce_seed0_iters3"]
    assert "earlier result kept" in capsys.readouterr().out

    # Resume: the work dir holds the final checkpoint, so only the evaluation runs again and
    # gives the same numbers from the same weights.
    (out / "ce-l1_seed0_iters3.json").unlink()
    resumed = cl.run_comparison(CONFIG, runs, str(out), resume=True, **kw)
    assert resumed.finished == ["ce-l1_seed0_iters3"] and resumed.skipped == ["ce_seed0_iters3"]
    new = _read(out, "ce-l1_seed0_iters3")
    old = json.loads(first["ce-l1_seed0_iters3"])
    assert new["resumed"] is True and old["resumed"] is False
    assert new["per_class"] == old["per_class"]


@pytest.mark.parametrize("size", ["180x240", "360x480"])
def test_camvid_configs_use_the_tool_presets(size):
    """The per-loss CamVid configs train exactly what compare_losses runs for that loss."""
    from mmengine.config import Config

    for name in ("ce", "ce-l1", "ce-kl", "logdice-ce"):
        cfg = Config.fromfile(
            str(REPO / "configs" / "camvid" / f"fpn_r18-half_1xb8-8k_camvid-{size}_{name}.py")
        )
        loss = cfg.model.decode_head.loss_decode
        loss = [dict(x) for x in loss] if isinstance(loss, list) else loss.to_dict()
        assert loss == cl.LOSS_PRESETS[name][1]
        h, w = (int(v) for v in size.split("x"))
        assert tuple(cfg.crop_size) == (h, w) and tuple(cfg.model.data_preprocessor.size) == (h, w)
        assert cfg.test_dataloader.dataset.type == "CamVidDataset"
        assert cfg.small_classes == ["Pole", "SignSymbol", "Pedestrian", "Bicyclist"]


def test_short_schedule_keeps_schedulers_valid(tmp_path):
    (run,) = cl.plan_runs(["ce"], [2], 40)
    cfg = cl.build_run_config(
        str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py"),
        run,
        str(tmp_path),
    )
    # Warm-up (0..200) is cut at 40, the poly decay (200..8000) would start after the end.
    assert [(s["type"], s["begin"], s["end"]) for s in cfg.param_scheduler] == [("LinearLR", 0, 40)]
    assert cfg.train_cfg.max_iters == 40 and cfg.randomness.seed == 2
    assert cfg.train_cfg.type == "FastResumeIterBasedTrainLoop"  # resumes skip at the sampler
    assert cfg.val_dataloader is None and cfg.work_dir == str(tmp_path)
    (long_run,) = cl.plan_runs(["ce"], [0], 20000)
    cfg = cl.build_run_config(
        str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py"),
        long_run,
        str(tmp_path),
    )
    assert [(s["begin"], s["end"]) for s in cfg.param_scheduler] == [(0, 200), (200, 20000)]


def test_cli_missing_data_root_is_one_clear_error(tmp_path, capsys):
    missing = tmp_path / "no_camvid"
    code = cl.main(
        [
            "--config",
            str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py"),
            "--losses",
            "ce",
            "ce-l1",
            "--iters",
            "5",
            "--out",
            str(tmp_path / "out"),
            "--data-root",
            str(missing),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        f"compare_losses: error: CamVidDataset: data root '{missing}' does not exist "
        "(see the README for how to get and lay out the data)."
    )
    assert not (tmp_path / "out").exists()


def test_cli_split_without_annotations_names_the_folder(tmp_path, capsys):
    data = generate_synthetic_streets(tmp_path / "d", num_train=1, num_val=1, height=64, width=128)
    for p in (data / "ann_dir" / "val").iterdir():
        p.unlink()
    (data / "ann_dir" / "val").rmdir()
    code = cl.main(
        ["--config", CONFIG, "--losses", "ce", "--iters", "5", "--out", str(tmp_path / "o")]
        + ["--data-root", str(data)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"annotation folder not found: {data}/ann_dir/val" in err


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
    runs = cl.plan_runs(["ce-l1"], [0], 4)
    kw = dict(work_root=str(work), data_root=str(data), ckpt_interval=2)
    killer = tmp_path / "killed_after_2.py"
    killer.write_text(
        f"_base_ = [{CONFIG!r}]\n"
        "custom_imports = dict(imports=['mmseg_marginal', 'interrupt_hook'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='InterruptAfterIterHook', after_iter=2)]\n"
    )
    killed = cl.run_comparison(str(killer), runs, str(out), cfg_options=TINY, **kw)
    assert killed.failed == ["ce-l1_seed0_iters4"] and not killed.finished
    run_dir = work / "ce-l1_seed0_iters4"
    assert {p.name for p in run_dir.glob("*.pth")} == {"iter_2.pth"}
    assert not (out / "ce-l1_seed0_iters4.json").exists()
    at_2 = load_from_local_safe(str(run_dir / "iter_2.pth"))
    capsys.readouterr()

    resumed = cl.run_comparison(CONFIG, runs, str(out), cfg_options=TINY, resume=True, **kw)
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
