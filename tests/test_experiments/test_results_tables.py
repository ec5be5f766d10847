"""mmseg_marginal.experiments.results: means and stds over seeds, the tables and the plots."""

import math
import shutil
from pathlib import Path

import pytest

from mmseg_marginal.experiments import (
    RunSpec,
    aggregate,
    aggregate_binary,
    binary_summary_markdown,
    load_results,
    plan_runs,
    small_class_names,
    summary_markdown,
    sweep_markdown,
    write_summary,
)
from mmseg_marginal.experiments.results import (
    loss_style,
    plot_share_scatter,
    share_error,
    sweep_rows,
)

REPO = Path(__file__).resolve().parents[2]
CAMVID = str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py")
CE = dict(type="CrossEntropyLoss")


def _spec(loss, seed, label=None, weight=None, cfg=None):
    return RunSpec(loss, label or loss.upper(), cfg or CE, seed, 7, weight)


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


def _runs():
    return [_spec("ce", 0, "CE"), _spec("l1", 0, "CE + L1"), _spec("ce", 1, "CE")] + [
        _spec("l1", 1, "CE + L1")
    ]


def test_summary_means_and_sample_std_over_seeds():
    runs = _runs()
    results = [
        _fake_result(runs[0], [80, 60, 10, 0], [1, 2, 3, 4]),
        _fake_result(runs[1], [90, 70, 20, 10], [1, 1, 1, 1]),
        _fake_result(runs[2], [70, 40, 30, None], [3, 2, 1, 0]),
    ]
    rows = aggregate(results)
    assert [r["group"] for r in rows] == ["ce", "l1"]
    ce = rows[0]
    assert ce["seeds"] == [0, 1]
    assert ce["iou"]["a"] == pytest.approx((75.0, math.sqrt(50.0)))
    assert ce["iou"]["d"] == (0.0, None)  # one seed has no IoU for d
    # Small classes default to the 4 smallest GT proportions; mean over seeds of the means.
    assert ce["small_classes"] == ["d", "c", "b", "a"]
    assert ce["small_miou"][0] == pytest.approx((37.5 + 140 / 3) / 2)
    assert rows[1]["iou"]["b"] == (70.0, None)
    text = summary_markdown(results, runs)
    assert "| CE | 2 | 75.0 ± 7.1 | 50.0 ± 14.1 | 20.0 ± 14.1 | 0.0 |" in text
    assert "pending: l1_seed1_iters7" in text
    assert "| GT | 50.0 | 30.0 | 15.0 | 5.0 |" in text
    assert "Mean training time per run: ce 2 min, l1 2 min." in text


def test_summary_leaves_resumed_runs_out_of_the_training_time():
    runs = _runs()
    results = [_fake_result(spec, [80, 60, 10, 0], [1, 2, 3, 4]) for spec in runs[:3]]
    results[1]["train_time_s"] = 600.0
    results[0]["resumed"] = True
    results[0]["train_time_s"] = 60.0  # the last part only
    results[2]["train_time_s"] = 300.0
    rows = aggregate(results)
    assert rows[0]["train_time_s"] == (300.0, None)
    text = summary_markdown(results, runs)
    assert "ce 5 min, l1 10 min." in text
    assert "not averaged): ce_seed0_iters7." in text
    results[2]["resumed"] = True
    text = summary_markdown(results, runs)
    assert "ce not measured (resumed), l1 10 min." in text


def test_small_classes_given_must_exist():
    result = _fake_result(_spec("ce", 0), [1, 2, 3, 4], [0, 0, 0, 0])
    assert small_class_names(result, ["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"small classes \['z'\]"):
        small_class_names(result, ["z"])


def _binary_result(spec, dsc, hd, shares):
    """``shares``: (gt, pred) foreground share per image, fractions."""
    per_image = [
        dict(img_path=f"im{i}.png", gt_share=g, pred_share=p, dsc=0.5, hd95=1.0)
        for i, (g, p) in enumerate(shares)
    ]
    gt = 100 * sum(g for g, _ in shares) / len(shares)
    pred = 100 * sum(p for _, p in shares) / len(shares)
    return dict(
        _fake_result(spec, [1, 2, 3, 4], [0, 0, 0, 0]),
        binary=dict(DSC=dsc, HD95=hd, GTShare=gt, PredShare=pred),
        per_image=per_image,
    )


def test_binary_table_in_the_layout_of_table_2():
    runs = [_spec("bce", 0, "BCE"), _spec("bce", 1, "BCE"), _spec("l1", 0, "BCE + L1")]
    results = [
        _binary_result(runs[0], 70.0, 20.0, [(0.10, 0.12), (0.20, 0.14)]),
        _binary_result(runs[1], 72.0, 10.0, [(0.10, 0.10), (0.20, 0.20)]),
        _binary_result(runs[2], 75.0, 8.0, [(0.10, 0.11), (0.20, 0.21)]),
    ]
    assert share_error(results[0]) == pytest.approx(4.0)  # (2 + 6) / 2 percent
    rows = aggregate_binary(results)
    assert rows[0]["dsc"] == pytest.approx((71.0, math.sqrt(2.0)))
    assert rows[0]["hd95"] == pytest.approx((15.0, math.sqrt(50.0)))
    assert rows[0]["pred_share"] == pytest.approx((14.0, math.sqrt(2.0)))
    assert rows[0]["share_error"] == pytest.approx((2.0, math.sqrt(8.0)))
    text = binary_summary_markdown(results, runs)
    assert "| BCE | 2 | 71.0 ± 1.4 | 15.0 ± 7.1 | 15.00 | 14.00 ± 1.41 | 2.00 ± 2.83 |" in text
    assert "| BCE + L1 | 1 | 75.0 | 8.0 | 15.00 | 16.00 | 1.00 |" in text
    assert summary_markdown(results, runs) == text  # binary results get the binary table


def test_sweep_rows_sorted_by_loss_and_lambda():
    marg = dict(type="CEMarginalLoss", marginal_weight=1.0)
    runs = [
        RunSpec("l1", "x", dict(marg, marginal_weight=3.0), 0, 7, 3.0),
        RunSpec("l1", "x", marg, 0, 7, None),  # the config's own λ = 1
        RunSpec("l1", "x", dict(marg, marginal_weight=0.1), 0, 7, 0.1),
        RunSpec("ce", "CE", CE, 0, 7),  # no λ: not in the sweep
    ]
    results = [
        _binary_result(spec, d, 5.0, [(0.1, 0.1)]) for spec, d in zip(runs, (60, 70, 65, 50))
    ]
    rows = sweep_rows(results)
    assert [(r["loss"], r["weight"], r["dsc"][0]) for r in rows] == [
        ("l1", 0.1, 65),
        ("l1", 1.0, 70),
        ("l1", 3.0, 60),
    ]
    text = sweep_markdown(results, runs)
    assert "| l1 | 0.1 | 1 | 65.0 | 5.0 | 10.00 |" in text
    assert "Ground-truth foreground share: 10.00 %." in text


def test_summary_only_reproduces_the_camvid_summary_byte_for_byte(tmp_path):
    out = tmp_path / "camvid"
    shutil.copytree(REPO / "results" / "camvid", out)
    runs = plan_runs(["ce", "ce-l1", "ce-kl", "logdice-ce"], [0, 1, 2], 8000, config=CAMVID)
    pytest.importorskip("matplotlib")
    text = write_summary(str(out), runs)
    expected = (REPO / "results" / "camvid" / "summary.md").read_text()
    assert text == expected
    assert (out / "summary.md").read_text() == expected
    assert (out / "per_class.png").stat().st_size > 10000
    # labels are those the runs were recorded with
    assert [r["_spec"].label for r in load_results(str(out), runs)][:4] == [
        "CE",
        "CE + L1 (λ=1, τ=10)",
        "CE + KL (λ=0.1, τ=10)",
        "LogDiceCE (CE + 0.1·(-log Dice))",
    ]


def test_binary_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    runs = [_spec("bce", 0, "BCE"), RunSpec("l1", "L1", [CE, dict(type="LabelMarginalLoss")], 0, 7)]
    for spec, d in zip(runs, (60.0, 70.0)):
        result = _binary_result(spec, d, 5.0, [(0.1, 0.12), (0.2, 0.15)])
        result.pop("_spec")
        result["spec"] = dict(label=spec.label)
        (tmp_path / f"{spec.name}.json").write_text(__import__("json").dumps(result))
    text = write_summary(str(tmp_path), runs)
    assert "| L1 | 1 | 70.0 |" in text and (tmp_path / "scatter.png").stat().st_size > 5000
    text = write_summary(str(tmp_path), runs, sweep=True)
    assert "| l1 | 1 | 1 | 70.0 |" in text
    assert (tmp_path / "lambda_sweep.png").stat().st_size > 5000
    assert (tmp_path / "lambda_sweep.md").read_text() == text


def test_every_loss_of_a_plot_has_its_own_colour_and_marker():
    styles = [loss_style(i) for i in range(50)]
    assert len(set(styles)) == 50
    assert styles[:10] == [(f"C{i}", "o") for i in range(10)]
    assert styles[10] == ("C0", "s")  # the eleventh loss: the first colour, another marker


def test_the_share_scatter_draws_each_of_eleven_losses_differently(tmp_path, monkeypatch):
    """One point set per loss (per image: GT share, mean predicted share over its seeds), and
    no two losses with the same colour and marker, as in the DRIVE comparison's 11 losses."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig: None)  # keep the figure to inspect it
    results = []
    for k in range(11):
        for seed, pred in ((0, 0.10), (1, 0.20)):
            spec = _spec(f"loss{k}", seed, f"loss {k}")
            results.append(_binary_result(spec, 70.0, 5.0, [(0.3, pred + k / 100), (0.4, 0.5)]))
    plot_share_scatter(results, str(tmp_path / "scatter.png"))
    ax = plt.gcf().axes[0]
    sets = ax.collections
    assert [s.get_label() for s in sets] == [f"loss {k}" for k in range(11)]
    # image 0 of loss k: GT 30 %, predicted (10 + 20) / 2 + k percent
    assert sets[3].get_offsets()[0].tolist() == pytest.approx([30.0, 18.0])
    looks = {(tuple(s.get_facecolor()[0]), s.get_paths()[0].vertices.tobytes()) for s in sets}
    assert len(looks) == 11
    close("all")


def _two_seed_binary():
    runs = [_spec("bce", 0, "BCE"), _spec("l1", 0, "BCE + L1")]
    runs += [_spec("bce", 1, "BCE"), _spec("l1", 1, "BCE + L1")]
    values = [  # (DSC, HD-95, per-image (gt, pred) shares)
        (70.0, 20.0, [(0.10, 0.08), (0.20, 0.16)]),
        (75.0, 12.0, [(0.10, 0.10), (0.20, 0.21)]),
        (72.0, 10.0, [(0.10, 0.09), (0.20, 0.17)]),
        (77.0, 14.0, [(0.10, 0.11), (0.20, 0.19)]),
    ]
    return runs, [_binary_result(s, *v) for s, v in zip(runs, values)]


def test_binary_summary_gives_the_welch_difference_to_the_reference():
    """BCE DSC (70, 72), L1 (75, 77): difference +5, se = sqrt(2/2 + 2/2), 2 degrees of
    freedom, so the interval is 5 ± t(2, 0.975)·sqrt(2) = 5 ± 6.085 and the two-sided p is
    1 - t / sqrt(2 + t²) with t = 5 / sqrt(2): 0.0715."""
    runs, results = _two_seed_binary()
    text = binary_summary_markdown(results, runs)
    assert "Differences: each loss minus the reference BCE (`bce`)" in text
    rows = {r[0]: r for r in _cells(text) if r[0] in ("BCE", "BCE + L1") and len(r) == 7}
    assert rows["BCE"][2:6] == ["reference"] * 4
    assert rows["BCE + L1"][2] == "+5.0 [-1.1, +11.1], p = 0.072"
    # HD-95 (20, 10) vs (12, 14): means 15 and 13, variances 50 and 2, df = 26²/(25²+1) ≈ 1.08
    hd = rows["BCE + L1"][3]
    assert hd.startswith("-2.0 [") and hd.endswith("p = 0.76")
    # predicted - GT share of BCE: seeds -3 and -2 points, mean -2.5, se = sqrt(0.5 / 2) = 0.5,
    # 1 degree of freedom: ± tan(0.475 π)·0.5 = ± 6.353, p = 1 - (2/π)·atan(5) = 0.126
    assert math.tan(0.475 * math.pi) * 0.5 == pytest.approx(6.353, abs=1e-3)
    assert rows["BCE"][6] == "-2.50 [-8.85, +3.85], p = 0.13"
    # the same table with the other loss as reference: signs flip, p stays
    flipped = binary_summary_markdown(results, runs, reference="l1")
    frows = {r[0]: r for r in _cells(flipped) if len(r) == 7}
    assert frows["BCE"][2] == "-5.0 [-11.1, +1.1], p = 0.072"
    assert frows["BCE + L1"][2] == "reference"


def _cells(text):
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]


def test_the_welch_columns_agree_with_scipy_on_the_recorded_drive_runs():
    """Ours (L1) vs BCE on DRIVE, seeds 0-2 (results/drive): Welch's p from scipy's ttest_ind
    (DSC 0.12, HD-95 0.24) is the p of the summary's difference table."""
    scipy_stats = pytest.importorskip("scipy.stats")
    drive = REPO / "results" / "drive"

    def values(loss, key):
        return [
            __import__("json").loads((drive / f"{loss}_seed{s}_iters1500.json").read_text())[
                "binary"
            ][key]
            for s in (0, 1, 2)
        ]

    from mmseg_marginal.experiments import welch_difference

    for key, p in (("DSC", 0.12), ("HD95", 0.24)):
        a, b = values("bce-l1", key), values("bce", key)
        d = welch_difference(a, b)
        ref = scipy_stats.ttest_ind(a, b, equal_var=False)
        assert d.p == pytest.approx(ref.pvalue) and round(d.p, 2) == p
        assert d.df == pytest.approx(ref.df)


def test_multi_class_summary_gives_differences_of_miou_and_per_class_iou():
    runs = _runs()
    results = [
        _fake_result(runs[0], [80, 60, 10, 0], [1, 2, 3, 4]),
        _fake_result(runs[1], [90, 70, 20, 10], [1, 1, 1, 1]),
        _fake_result(runs[2], [70, 40, 30, 2], [3, 2, 1, 0]),
        _fake_result(runs[3], [90, 80, 40, 12], [1, 1, 1, 1]),
    ]
    text = summary_markdown(results, runs)
    assert "**IoU difference to the reference per class (points)**" in text
    rows = [r for r in _cells(text) if r[0] == "CE + L1" and len(r) == 6]
    # class a: CE (80, 70), L1 (90, 90): difference +15, se = sqrt(50/2 + 0) = 5, 1 degree of
    # freedom: ± tan(0.475 π)·5 = ± 63.53, p = 1 - (2/π)·atan(15/5) = 0.205
    half = math.tan(0.475 * math.pi) * 5
    assert 1 - 2 / math.pi * math.atan(3) == pytest.approx(0.2048, abs=1e-4)
    assert rows[0][2] == f"+15.0 [{15 - half:+.1f}, {15 + half:+.1f}], p = 0.20"
    # class b: CE (60, 40), L1 (70, 80): +25, variances 200 and 50, se = sqrt(125)
    assert rows[0][3].startswith("+25.0 [")
    # mean prop. MAE: CE (2.5, 1.5), L1 (1, 1): L1 has no spread, CE has, so it is defined:
    # -1, se = 0.5, 1 degree of freedom, ± 6.353, p = 1 - (2/π)·atan(2) = 0.295
    mae = [r for r in _cells(text) if r[0] == "CE + L1" and len(r) == 5][0][4]
    assert 1 - 2 / math.pi * math.atan(2) == pytest.approx(0.2952, abs=1e-4)
    assert mae == "-1.00 [-7.35, +5.35], p = 0.30"


def test_a_reference_without_a_finished_run_or_not_compared():
    runs = _runs()
    results = [_fake_result(runs[1], [90, 70, 20, 10], [1, 1, 1, 1])]
    text = summary_markdown(results, runs)  # the reference "ce" has not finished
    assert "**Difference to the reference**: the reference loss `ce` has no finished run" in text
    with pytest.raises(ValueError, match=r"reference loss 'dice' is not one of the compared"):
        summary_markdown(results, runs, reference="dice")


def test_the_summary_says_which_commit_produced_the_runs():
    runs, results = _two_seed_binary()
    results[0]["commit"] = "0123456789abcdef" * 2 + "01234567"
    results[0]["uncommitted_changes"] = False
    results[1]["commit"] = results[0]["commit"]
    results[2]["commit"] = "fedcba9876543210" * 2 + "01234567"
    results[2]["uncommitted_changes"] = True
    text = binary_summary_markdown(results, runs)
    assert (
        "Code commit: `0123456789ab` (2 runs); `fedcba987654` with uncommitted changes (1 run); "
        "not recorded (1 run)." in text
    )


def test_a_one_seed_sweep_says_why_it_has_no_interval():
    marg = dict(type="CEMarginalLoss", marginal_weight=1.0)
    runs = [RunSpec("l1", "x", dict(marg, marginal_weight=w), 0, 7, w) for w in (0.1, 1.0)]
    results = [_binary_result(s, 60.0, 5.0, [(0.1, 0.1)]) for s in runs]
    text = sweep_markdown(results, runs)
    assert "One seed per setting: no standard deviation, interval" in text
    assert "a λ picked from this table is selected on that split" in text
    summary = binary_summary_markdown(results, runs)
    assert "one seed per loss gives no interval or p-value" in summary
    assert "**Difference to the reference**" not in summary


def test_code_version_reads_the_commit_of_the_checkout(tmp_path):
    import subprocess

    from mmseg_marginal.experiments import code_version

    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    outside = tmp_path / "plain" / "x.py"
    outside.parent.mkdir()
    outside.write_text("")
    assert code_version(str(outside)) == dict(commit=None, uncommitted_changes=None)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(
        GIT_AUTHOR_NAME="a",
        GIT_AUTHOR_EMAIL="a@b",
        GIT_COMMITTER_NAME="a",
        GIT_COMMITTER_EMAIL="a@b",
        GIT_CONFIG_GLOBAL="/dev/null",
        HOME=str(tmp_path),
        PATH=__import__("os").environ["PATH"],
    )

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
        ).stdout.strip()

    git("init", "-q")
    (repo / "m.py").write_text("a = 1\n")
    git("add", "m.py")
    git("commit", "-qm", "one")
    head = git("rev-parse", "HEAD")
    assert len(head) == 40
    assert code_version(str(repo / "m.py")) == dict(commit=head, uncommitted_changes=False)
    (repo / "m.py").write_text("a = 2\n")
    assert code_version(str(repo / "m.py")) == dict(commit=head, uncommitted_changes=True)


def test_the_tool_refuses_an_unknown_reference_before_any_run(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "compare_losses", REPO / "tools" / "compare_losses.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "out"
    args = ["--config", CAMVID, "--losses", "ce", "ce-l1", "--iters", "5", "--out", str(out)]
    assert tool.main(args + ["--reference", "dice"]) == 2
    assert capsys.readouterr().err.strip() == (
        "compare_losses: error: reference loss 'dice' is not one of the compared losses "
        "['ce', 'ce-l1']"
    )
    assert not out.exists()
