"""What ``pip install`` of the wheel gives, used from a folder outside the clone.

One module-scoped build: ``python -m build`` (sdist, then the wheel from the sdist, as a
release is made) on a copy of the sources, ``twine check`` on both, and
``pip install --no-deps --prefix`` of the wheel into a temporary prefix that reuses this
environment's installed stack (torch, mmcv, mmengine, mmseg). Every command then runs with
``PYTHONPATH`` = that prefix's site-packages only (the clone is not on the path) and the
working directory in a temporary folder: the console script ``mmseg_marginal configs``,
``python -m mmseg_marginal train`` / ``test`` on a shipped DRIVE config (the test through a
user config that inherits it as ``mmseg_marginal::``), ``demo`` with tiny arguments, and
``MMSegInferencer`` on one image with the trained checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from drive_data import require_drive

REPO = Path(__file__).resolve().parents[2]
DRIVE_CONFIG = "unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce-l1"
SOURCES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")
SOURCE_DIRS = ("mmseg_marginal", "configs", "tools", "requirements")

pytestmark = pytest.mark.slow


def _repo_configs(pattern: str = "*.py") -> list[str]:
    root = REPO / "configs"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(pattern))


def _run(cmd, cwd, env, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc


class Installed:
    """The built distributions and the prefix the wheel is installed into."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.src, self.dist, self.prefix = root / "src", root / "dist", root / "prefix"
        self.outside = root / "elsewhere"  # the working directory of the commands
        self.outside.mkdir()
        self.site = Path(
            sysconfig.get_path("purelib", vars={"base": self.prefix, "platbase": self.prefix})
        )
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.env = dict(env, PYTHONPATH=str(self.site), OMP_NUM_THREADS="1")

    @property
    def wheel(self) -> Path:
        return next(self.dist.glob("*.whl"))

    @property
    def sdist(self) -> Path:
        return next(self.dist.glob("*.tar.gz"))

    def run(self, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return _run([sys.executable, *args], self.outside, self.env, timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    pytest.importorskip("build", reason="the tests extra (build) is not installed")
    inst = Installed(tmp_path_factory.mktemp("wheel"))
    inst.src.mkdir()
    for name in SOURCES:
        shutil.copy2(REPO / name, inst.src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mim", "*.egg-info")
    for name in SOURCE_DIRS:
        shutil.copytree(REPO / name, inst.src / name, ignore=ignore)
    env = dict(os.environ, PYTHONPATH="")
    # without isolation: the build uses this environment's setuptools, offline
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(inst.dist)]
    _run(build + [str(inst.src)], inst.root, env)
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
    _run(pip + ["--prefix", str(inst.prefix), str(inst.wheel)], inst.root, env)
    return inst


def test_twine_accepts_the_sdist_and_the_wheel(installed):
    pytest.importorskip("twine", reason="the tests extra (twine) is not installed")
    proc = installed.run(
        "-m", "twine", "check", "--strict", str(installed.sdist), str(installed.wheel)
    )
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_the_wheel_ships_every_config_and_tool_and_its_metadata(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(meta_name).decode()
        entry_points = wheel.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    mim = "mmseg_marginal/.mim/"
    shipped = sorted(n[len(mim + "configs/") :] for n in names if n.startswith(mim + "configs/"))
    assert [n for n in shipped if n.endswith(".py")] == _repo_configs()
    tools = {n[len(mim + "tools/") :] for n in names if n.startswith(mim + "tools/")}
    repo_tools = {p.relative_to(REPO / "tools").as_posix() for p in (REPO / "tools").rglob("*")}
    assert tools == {t for t in repo_tools if (REPO / "tools" / t).is_file()} - {"install.sh"}
    assert mim + "model-index.yml" in names
    assert not any("__pycache__" in n or n.startswith(("tests/", "configs/")) for n in names)
    assert "mmseg_marginal = mmseg_marginal.cli:main" in entry_points
    for field in (
        "Requires-Python: >=3.10",
        "License-Expression: Apache-2.0",
        "Description-Content-Type: text/markdown",
        "Classifier: Programming Language :: Python :: 3.11",
        "Project-URL: Paper, https://arxiv.org/abs/2104.08717",
    ):
        assert field in metadata
    with tarfile.open(installed.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {f"configs/{c}" for c in _repo_configs()} <= members
    assert {"tools/train.py", "setup.py", "MANIFEST.in", "LICENSE"} <= members


def test_the_installed_copy_is_used_and_lists_its_configs(installed):
    code = "import mmseg_marginal.shipped as s; print(s.__file__); print(s.shipped_root())"
    module, root = installed.run("-c", code).stdout.split()
    assert Path(module) == installed.site / "mmseg_marginal" / "shipped.py"
    assert Path(root) == installed.site / "mmseg_marginal" / ".mim"
    script = installed.prefix / "bin" / "mmseg_marginal"
    proc = _run([str(script), "configs", "drive"], installed.outside, installed.env)
    assert proc.stdout.split() == [c for c in _repo_configs() if c.startswith("drive_marginal/")]


def test_experiments_module_points_to_the_commands(installed):
    proc = subprocess.run(
        [sys.executable, "-m", "mmseg_marginal.experiments"],
        cwd=installed.outside,
        env=installed.env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "python -m mmseg_marginal compare" in proc.stderr and "JOB" not in proc.stderr


@pytest.fixture(scope="module")
def trained(installed) -> Path:
    """2 iterations of a shipped DRIVE config on the shared DRIVE data: the work dir. The loop
    validates after its last iteration whatever the interval: on 2 of the 20 images."""
    drive = require_drive()
    work = installed.root / "work_train"
    options = [
        "train_cfg.max_iters=2",
        "train_cfg.val_interval=100",
        "default_hooks.checkpoint.interval=2",
        "train_dataloader.batch_size=2",
        f"train_dataloader.dataset.dataset.data_root={drive}",
        f"val_dataloader.dataset.data_root={drive}",
        "val_dataloader.dataset.indices=2",
        f"test_dataloader.dataset.data_root={drive}",
    ]
    for loader in ("train", "val", "test"):
        options += [f"{loader}_dataloader.num_workers=0"]
        options += [f"{loader}_dataloader.persistent_workers=False"]
    installed.run(
        "-m", "mmseg_marginal", "train", DRIVE_CONFIG, "--work-dir", str(work),
        "--cfg-options", *options,
    )  # fmt: skip
    return work


def test_train_then_test_through_a_user_config_inheriting_the_shipped_one(installed, trained):
    assert (trained / "iter_2.pth").is_file()
    drive = require_drive()
    user_config = installed.outside / "my_drive.py"
    user_config.write_text(
        f"_base_ = ['mmseg_marginal::drive_marginal/{DRIVE_CONFIG}.py']\n"
        "test_dataloader = dict(num_workers=0, persistent_workers=False,\n"
        f"    dataset=dict(data_root={str(drive)!r}, indices=2))\n"
    )
    work = installed.root / "work_test"
    installed.run(
        "-m", "mmseg_marginal", "test", str(user_config), str(trained / "iter_2.pth"),
        "--work-dir", str(work),
    )  # fmt: skip
    metrics = json.loads(next(work.glob("*/*.json")).read_text())
    assert {"DSC", "HD95", "mPropMAE"} <= metrics.keys()
    assert metrics["RegProp.background"] + metrics["RegProp.vessel"] == pytest.approx(100.0)


def test_inferencer_predicts_an_image_with_the_trained_checkpoint(installed, trained):
    drive = require_drive()
    image = next((drive / "images" / "validation").glob("*.png"))
    code = (
        "import sys\n"
        "from mmseg.apis import MMSegInferencer\n"
        "from mmseg_marginal.shipped import resolve_config\n"
        "inferencer = MMSegInferencer(model=resolve_config(sys.argv[1]), weights=sys.argv[2],"
        " device='cpu')\n"
        "out = inferencer(sys.argv[3], return_datasamples=True)\n"
        "print('RESULT', tuple(out.pred_sem_seg.data.shape), int(out.pred_sem_seg.data.max()))\n"
    )
    proc = installed.run("-c", code, DRIVE_CONFIG, str(trained / "iter_2.pth"), str(image))
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    shape, top = line[len("RESULT ") :].rsplit(" ", 1)
    assert shape == "(1, 584, 565)" and int(top) <= 1


def test_demo_with_tiny_arguments(installed):
    data, work = installed.root / "demo_data", installed.root / "demo_work"
    proc = installed.run(
        "-m", "mmseg_marginal", "demo", "--iters", "2", "--num-train", "4", "--num-val", "2",
        "--batch-size", "2", "--data-root", str(data), "--work-dir", str(work),
    )  # fmt: skip
    out = proc.stdout
    assert "\nclass " in out and "\nvessel " in out and "\nmIoU " in out
    assert "Iter(train)" not in out + proc.stderr
    for run in ("bce_seed0_iters2", "dice_seed0_iters2", "bce-l1_seed0_iters2"):
        assert (work / "results" / f"{run}.json").is_file()
        assert "Iter(train) [2/2]" in (work / run / "output.log").read_text()
