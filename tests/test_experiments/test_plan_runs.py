"""mmseg_marginal.experiments.plan: losses read from the configs, run names, λ sweeps."""

import json
import shutil
from pathlib import Path

import pytest

from mmseg_marginal.experiments import (
    describe_loss,
    loss_of_config,
    plan_runs,
    sibling_loss_configs,
    term_weight,
    with_term_weight,
)

REPO = Path(__file__).resolve().parents[2]
STREETS = str(
    REPO / "configs" / "synthetic_streets" / "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce.py"
)
CAMVID = str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py")
DRIVE = str(REPO / "configs" / "drive_marginal" / "unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py")
CE = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)


def test_sibling_configs_are_the_files_that_differ_in_the_loss_suffix():
    assert sorted(sibling_loss_configs(CAMVID)) == ["ce", "ce-kl", "ce-l1", "logdice-ce"]
    assert sorted(sibling_loss_configs(DRIVE)) == [
        "bce",
        "bce-kl",
        "bce-l1",
        "ce-softmax",
        "dice",
        "dice-bce",
        "dicebias-bce",
        "focal",
        "gdice",
        "logdice",
        "logdice-bce",
    ]
    assert sibling_loss_configs(STREETS)["ce-l1"].endswith("synthetic-streets-128x256_ce-l1.py")


def test_plan_runs_orders_seeds_outermost_and_reads_the_loss_of_each_config():
    runs = plan_runs(["ce", "ce-l1"], [0, 1], 100, config=STREETS)
    assert [r.name for r in runs] == [
        "ce_seed0_iters100",
        "ce-l1_seed0_iters100",
        "ce_seed1_iters100",
        "ce-l1_seed1_iters100",
    ]
    assert runs[1].loss_cfg == loss_of_config(sibling_loss_configs(STREETS)["ce-l1"])
    assert runs[1].loss_cfg["type"] == "CEMarginalLoss"
    assert runs[1].loss_cfg["penalty"] == "l1" and runs[1].loss_cfg["marginal_weight"] == 1.0
    assert runs[0].label == "CE" and runs[1].label == "CE + L1 (λ=1, τ=10)"
    runs[0].loss_cfg["loss_weight"] = 5.0  # each run owns its copy
    assert runs[2].loss_cfg["loss_weight"] == 1.0


def test_the_recorded_camvid_runs_used_the_losses_of_the_camvid_configs():
    """results/camvid was produced with the losses that the configs hold now."""
    runs = plan_runs(["ce", "ce-l1", "ce-kl", "logdice-ce"], [0, 1, 2], 8000, config=CAMVID)
    for run in runs:
        recorded = json.loads((REPO / "results" / "camvid" / f"{run.name}.json").read_text())
        assert recorded["spec"]["loss_cfg"] == run.loss_cfg, run.name


def test_a_loss_takes_the_head_outputs_of_its_config():
    """The 2-class softmax reference needs out_channels=2 and no threshold; the sigmoid
    losses keep one logit and the 0.5 threshold."""
    bce, softmax = plan_runs(["bce", "ce-softmax"], [0], 10, config=DRIVE)
    assert bce.head == {"out_channels": 1, "threshold": 0.5}
    assert softmax.head == {"out_channels": 2, "threshold": None}
    assert softmax.loss_cfg["use_sigmoid"] is False
    (camvid,) = plan_runs(["ce"], [0], 10, config=CAMVID)
    assert camvid.head == {}


def test_loss_from_any_config_file():
    path = (
        REPO
        / "configs"
        / "synthetic_streets"
        / "fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce-l1.py"
    )
    (run,) = plan_runs([f"mine={path}"], [3], 5)
    assert run.name == "mine_seed3_iters5"
    assert run.loss_cfg["type"] == "CEMarginalLoss" and run.loss_cfg["temperature"] == 10.0


def test_sweep_expands_the_losses_with_a_lambda_and_reuses_the_configs_own():
    runs = plan_runs(["bce", "bce-l1", "dice-bce"], [0], 10, sweep_lambda=[0.1, 1, 3], config=DRIVE)
    assert [r.name for r in runs] == [
        "bce_seed0_iters10",  # no λ: run once, as the reference
        "bce-l1_lam0.1_seed0_iters10",
        "bce-l1_seed0_iters10",  # λ = 1 is the config's own: the main table's run
        "bce-l1_lam3_seed0_iters10",
        "dice-bce_seed0_iters10",  # λ = 0.1 is the config's own
        "dice-bce_lam1_seed0_iters10",
        "dice-bce_lam3_seed0_iters10",
    ]
    assert [r.weight for r in runs] == [None, 0.1, 1.0, 3.0, 0.1, 1.0, 3.0]
    assert runs[1].loss_cfg[1]["type"] == "LabelMarginalLoss"
    assert runs[1].loss_cfg[1]["loss_weight"] == 0.1 and runs[1].loss_cfg[0]["loss_weight"] == 1
    assert runs[6].loss_cfg[1]["type"] == "ClasswiseDiceLoss"
    assert runs[6].loss_cfg[1]["loss_weight"] == 3.0
    assert runs[6].label == "BCE + 3·(1-Dice)"


def test_sweep_without_a_loss_with_lambda_is_refused():
    with pytest.raises(ValueError, match="--sweep-lambda needs a loss with a λ"):
        plan_runs(["bce", "dice"], [0], 10, sweep_lambda=[1.0], config=DRIVE)


def test_term_weight_of_each_loss_form():
    marginal = dict(type="CEMarginalLoss", penalty="kl", marginal_weight=0.1)
    assert term_weight(marginal) == 0.1
    assert term_weight([CE, dict(type="LabelMarginalLoss", loss_weight=2.0)]) == 2.0
    assert term_weight([CE, dict(type="ClasswiseDiceLoss", log=True)]) == 1.0
    assert term_weight(CE) is None
    assert term_weight(dict(type="ClasswiseDiceLoss")) is None
    assert term_weight([CE, CE]) is None
    assert term_weight([dict(type="ClasswiseDiceLoss"), CE]) is None
    assert with_term_weight(marginal, 3)["marginal_weight"] == 3.0
    assert marginal["marginal_weight"] == 0.1  # not modified
    assert with_term_weight([CE, dict(type="DiceBiasLoss")], 0.5)[1]["loss_weight"] == 0.5
    with pytest.raises(ValueError, match="no weighted term"):
        with_term_weight(CE, 1.0)


def test_describe_loss():
    assert describe_loss(dict(CE, use_sigmoid=True)) == "BCE"
    assert describe_loss([CE, dict(type="ClasswiseDiceLoss", log=True, loss_weight=0.1)]) == (
        "CE + 0.1·(-log Dice)"
    )
    assert describe_loss(dict(type="SigmoidFocalLoss", gamma=2.0)) == "Focal (γ=2)"
    assert describe_loss(dict(type="GeneralizedDiceLoss")) == "GeneralizedDice"
    assert describe_loss(
        [dict(CE, use_sigmoid=True), dict(type="LabelMarginalLoss", penalty="kl", loss_weight=0.1)]
    ) == ("BCE + 0.1·KL (τ=10)")


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (
            (["nope"], [0], 10),
            dict(config=STREETS),
            r"unknown loss 'nope': no config <stem>_nope.py",
        ),
        ((["ce"], [0], 10), {}, r"unknown loss 'ce'.*no --config given"),
        (([], [0], 10), dict(config=STREETS), "no loss given"),
        ((["ce"], [], 10), dict(config=STREETS), "no seed given"),
        ((["ce"], [0, 0], 10), dict(config=STREETS), "duplicate seeds"),
        ((["ce"], [-1], 10), dict(config=STREETS), "seeds must be >= 0"),
        ((["ce"], [0], 0), dict(config=STREETS), "--iters must be >= 1"),
        ((["ce", "ce"], [0], 10), dict(config=STREETS), "duplicate loss names"),
    ],
)
def test_plan_runs_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_runs(*args, **kwargs)


def test_missing_loss_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"loss config '{tmp_path}/x.py' does not exist"):
        plan_runs([f"x={tmp_path}/x.py"], [0], 10)


@pytest.mark.parametrize("size", ["180x240", "360x480"])
def test_camvid_configs_differ_only_in_the_loss(size):
    from mmengine.config import Config

    paths = sibling_loss_configs(
        str(REPO / "configs" / "camvid" / f"fpn_r18-half_1xb8-8k_camvid-{size}_ce.py")
    )
    h, w = (int(v) for v in size.split("x"))
    for path in paths.values():
        cfg = Config.fromfile(path)
        assert tuple(cfg.crop_size) == (h, w) and tuple(cfg.model.data_preprocessor.size) == (h, w)
        assert cfg.test_dataloader.dataset.type == "CamVidDataset"
        assert cfg.small_classes == ["Pole", "SignSymbol", "Pedestrian", "Bicyclist"]


DRIVE_LOSSES = (
    "bce focal dice logdice gdice dice-bce logdice-bce dicebias-bce bce-kl bce-l1 ce-softmax"
)
DRIVE_SWEEP_LOSSES = ["bce-l1", "bce-kl", "dice-bce", "logdice-bce"]


def _table_cells(text: str) -> list:
    """The cells of every markdown table row of ``text`` (header and rule rows included)."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.lstrip().startswith("|")
    ]


def test_the_recorded_drive_runs_match_the_configs_the_tables_and_the_readme(tmp_path):
    """results/drive holds the DRIVE comparison: every JSON is a planned run trained with the
    loss its config holds now, all three seeds and the λ sweep are complete, summary.md and
    lambda_sweep.md are regenerated byte for byte from the JSONs, and the README's DRIVE table
    carries the summary's numbers (under the README's loss names)."""
    record = REPO / "results" / "drive"
    main = plan_runs(DRIVE_LOSSES.split(), [0, 1, 2], 1500, config=DRIVE)
    sweep = plan_runs(DRIVE_SWEEP_LOSSES, [0], 1500, [0.01, 0.1, 1, 10], config=DRIVE)
    planned = {run.name: run for run in main + sweep}
    recorded = sorted(p.stem for p in record.glob("*.json"))
    assert set(recorded) <= set(planned), set(recorded) - set(planned)
    for name in recorded:
        result = json.loads((record / f"{name}.json").read_text())
        assert result["spec"]["loss_cfg"] == planned[name].loss_cfg, name
        assert result["dataset"] == "DRIVEFOVDataset" and result["num_images"] == 20, name
        assert result["iters"] == 1500 and result["seed"] == planned[name].seed, name
    assert set(recorded) == set(planned), set(planned) - set(recorded)

    pytest.importorskip("matplotlib")
    from mmseg_marginal.experiments import write_summary

    out = tmp_path / "drive"
    shutil.copytree(record, out)
    summary = write_summary(str(out), main)
    assert summary == (record / "summary.md").read_text()
    swept = write_summary(str(out), sweep, sweep=True)
    assert swept == (record / "lambda_sweep.md").read_text()

    readme = [cells[1:] for cells in _table_cells((REPO / "README.md").read_text())]
    summary_rows = _table_cells(summary)[2:]
    assert len(summary_rows) == 11
    for cells in summary_rows:  # loss | seeds | DSC | HD-95 | shares...
        assert cells[1:] in readme, cells
    assert len(_table_cells(swept)[2:]) == 16  # the README links to lambda_sweep.md
