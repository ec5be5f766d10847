"""A checkpoint that pickles a code-running global is refused where users load checkpoints:
mmengine's ``CheckpointLoader`` / ``load_checkpoint`` and ``tools/test.py``; the payload never
runs."""

import os
from pathlib import Path

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint
from tiny_data import make_tiny_dataset

import mmseg_marginal  # noqa: F401 - installs the weights_only loader
from mmseg_marginal.engine.checkpoint import CheckpointLoadError

REPO = Path(__file__).resolve().parents[2]


class _WritesAFile:
    """Unpickling it would run ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(tmp_path: Path) -> tuple:
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pth"
    state = {"decode_head.conv_seg.weight": torch.zeros(4, 32, 1, 1)}
    torch.save({"state_dict": state, "meta": {"x": _WritesAFile(marker)}}, path)
    return path, marker


def test_mmengine_checkpoint_loader_refuses(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(CheckpointLoadError, match="refusing to load checkpoint") as err:
        CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
    assert str(path) in str(err.value)
    model = torch.nn.Conv2d(32, 4, 1)
    with pytest.raises(CheckpointLoadError, match="posix.system"):
        load_checkpoint(model, str(path), map_location="cpu")
    assert not marker.exists()


def test_tools_test_refuses_with_one_line(tmp_path, fresh_python):
    path, marker = _evil_checkpoint(tmp_path)
    root = make_tiny_dataset(tmp_path / "tiny")
    config = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"
    opts = [f"{s}_dataloader.dataset.data_root={root}" for s in ("train", "val", "test")]
    args = [config, path, "--work-dir", tmp_path / "work", "--cfg-options", *opts]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = fresh_python.run(REPO / "tools" / "test.py", *args, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"refusing to load checkpoint {path}" in errors[0], proc.stderr
    assert "posix.system" in errors[0]
    assert not marker.exists()
