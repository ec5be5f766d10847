"""The command line (mmseg_marginal.cli), the shipped configs (mmseg_marginal.shipped) and the
``mmseg_marginal`` registry scope, in this process. The installed wheel is run end to end by
``tests/test_install/test_wheel.py``."""

from pathlib import Path

import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import METRICS, MODELS

import mmseg_marginal.cli as cli
from mmseg_marginal.evaluation import BoundaryMetric
from mmseg_marginal.losses import LabelMarginalLoss
from mmseg_marginal.shipped import (
    configs_dir,
    list_configs,
    resolve_config,
    shipped_root,
    tools_dir,
)

REPO = Path(__file__).resolve().parents[1]
DRIVE_L1 = "drive_marginal/unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce-l1.py"


def _repo_configs():
    root = REPO / "configs"
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "_base_" not in p.relative_to(root).parts
    )


def test_a_clone_uses_its_top_level_folders():
    assert shipped_root() == REPO
    assert configs_dir() == REPO / "configs" and tools_dir() == REPO / "tools"


def test_list_configs_all_and_filtered_by_every_word():
    assert list_configs() == _repo_configs()
    drive = list_configs("drive")
    assert drive == [c for c in _repo_configs() if c.startswith("drive_marginal/")]
    assert len(drive) == 11
    assert list_configs("DRIVE", "l1") == [DRIVE_L1]
    assert list_configs("no-such-word") == []


@pytest.mark.parametrize(
    "name",
    [
        DRIVE_L1,
        DRIVE_L1[:-3],
        "configs/" + DRIVE_L1,
        "mmseg_marginal::" + DRIVE_L1,
        Path(DRIVE_L1).name,
        Path(DRIVE_L1).stem,
        "_base_/datasets/drive_fov-64x64",
    ],
)
def test_resolve_a_shipped_config_by_name(name):
    expected = REPO / "configs" / (name if "_base_" in name else DRIVE_L1)
    assert Path(resolve_config(name)).resolve() == expected.with_suffix(".py")


def test_resolve_keeps_an_existing_path(tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("_base_ = []\n")
    assert resolve_config(str(mine)) == str(mine)


def test_resolve_unknown_names_the_closest_configs():
    with pytest.raises(FileNotFoundError) as err:
        resolve_config("unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce-l2")
    message = str(err.value)
    assert "'unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce-l2' is neither a file nor" in message
    assert "closest shipped configs: drive_marginal/unet-s4-c16_1xb8-1.5k_drive-fov" in message


def test_resolve_an_ambiguous_name_lists_the_matches(tmp_path, monkeypatch):
    for folder in ("a", "b"):
        (tmp_path / "configs" / folder).mkdir(parents=True)
        (tmp_path / "configs" / folder / "x.py").write_text("")
    (tmp_path / "tools").mkdir()
    monkeypatch.setattr("mmseg_marginal.shipped.PACKAGE_DIR", tmp_path / "pkg")
    with pytest.raises(FileNotFoundError, match=r"'x' matches 2 shipped configs.*: a/x.py, b/x.py"):
        resolve_config("x")


def test_missing_shipped_folders_are_one_error(tmp_path, monkeypatch):
    monkeypatch.setattr("mmseg_marginal.shipped.PACKAGE_DIR", tmp_path / "pkg")
    with pytest.raises(FileNotFoundError, match="the shipped configs/ and tools/ are missing"):
        shipped_root()


def test_configs_and_path_commands(capsys):
    assert cli.main(["configs", "drive", "l1"]) == 0
    assert capsys.readouterr().out.splitlines() == [DRIVE_L1]
    assert cli.main(["configs", "nothing-like-this"]) == 1
    assert "no shipped config contains nothing-like-this" in capsys.readouterr().err
    assert cli.main(["path", Path(DRIVE_L1).stem]) == 0
    assert capsys.readouterr().out.strip() == str(REPO / "configs" / DRIVE_L1)
    assert cli.main(["path"]) == 0
    assert capsys.readouterr().out.strip() == str(REPO)


def test_usage_lists_every_command(capsys):
    assert cli.main([]) == 2
    text = capsys.readouterr().out
    for name in ["configs", "path", *cli.COMMANDS]:
        assert f"\n  {name} " in text
    assert cli.main(["--help"]) == 0
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian' (commands: configs, path, train," in capsys.readouterr().err


def test_every_command_has_its_tool():
    for name, command in cli.COMMANDS.items():
        assert (REPO / "tools" / command.script).is_file(), name


def test_config_arguments_are_resolved():
    full = str(REPO / "configs" / DRIVE_L1)
    stem = Path(DRIVE_L1).stem
    assert cli._with_config_resolved([stem, "--work-dir", "w"], "first") == [
        full,
        "--work-dir",
        "w",
    ]
    assert cli._with_config_resolved(["--iters", "5"], "first") == ["--iters", "5"]
    got = cli._with_config_resolved(["--iters", "5", "--config", stem], "--config")
    assert got == ["--iters", "5", "--config", full]
    assert cli._with_config_resolved([f"--config={stem}"], "--config") == [f"--config={full}"]


def test_a_tool_runs_with_the_command_line_and_returns_its_exit_code(capsys):
    """The submit tool's parser (mmseg's test flags) with the config resolved; -h exits 0."""
    assert cli.run_tool("submit", ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mmseg_marginal submit [-h]")
    assert "--launcher" in out and "--cfg-options" in out
    assert cli.run_tool("train", []) == 2  # argparse: the config is missing
    assert "mmseg_marginal train: error: the following arguments are required: config" in (
        capsys.readouterr().err
    )


def test_unknown_config_is_one_line(capsys):
    assert cli.main(["train", "no-such-config"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mmseg_marginal: error: config 'no-such-config'")


def test_the_mmseg_marginal_scope_builds_what_mmseg_builds():
    """Dicts inherited through ``mmseg_marginal::`` carry ``_scope_='mmseg_marginal'``."""
    init_default_scope("mmseg")
    loss = MODELS.build(dict(type="LabelMarginalLoss", _scope_="mmseg_marginal"))
    assert type(loss) is LabelMarginalLoss
    metric = METRICS.build(dict(type="BoundaryMetric", _scope_="mmseg_marginal"))
    assert type(metric) is BoundaryMetric
    head = MODELS.build(
        dict(type="FCNHead", in_channels=4, channels=4, num_classes=3, _scope_="mmseg_marginal")
    )
    assert type(head).__module__.startswith("mmseg.models")
