"""tools/cityscapes_submission.py run as a user runs it, on a miniature Cityscapes tree.

The submission itself (PNGs, zip, scores of cityscapesscripts) is tested on the package
function in tests/test_utils/test_cityscapes_submission.py; here the command line: two CPU
ranks under torch.distributed.run write one zip, and a user error is one line on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from local_http import free_port
from mini_cityscapes import (
    make_mini_cityscapes,
    write_fewer_classes_checkpoint,
    write_tiny_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "cityscapes_submission.py"
BASE = REPO / "configs/fpn_marginal/fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cityscapes")
    return root, make_mini_cityscapes(root, splits=("test",))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny config and a checkpoint of its randomly initialised model."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), BASE)


def run(cmd: list, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run(
        [str(c) for c in cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_two_processes_write_one_zip(tree, tiny, tmp_path: Path):
    """Under torch.distributed.run (2 CPU ranks, gloo) each rank writes its share; one zip."""
    root, images = tree
    config, checkpoint = tiny
    out = tmp_path / "out"
    proc = run([
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(free_port()),
        TOOL, config, checkpoint, "--out", out, "--data-root", root, "--launcher", "pytorch",
    ])  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with zipfile.ZipFile(out / "cityscapes_test_submission.zip") as archive:
        assert set(archive.namelist()) == {p.name for p in images["test"]}


def test_checkpoint_with_other_class_count_is_one_line(tree, tiny, tmp_path: Path, fresh_python):
    root, _ = tree
    config, checkpoint = tiny
    other = write_fewer_classes_checkpoint(checkpoint, 11, tmp_path / "camvid11.pth")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = [config, other, "--out", tmp_path / "o", "--data-root", root]
    proc = fresh_python.run(TOOL, *args, cwd=REPO, env=env)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "predicts 11 classes" in errors[0] and "num_classes=19" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # stopped before inference
