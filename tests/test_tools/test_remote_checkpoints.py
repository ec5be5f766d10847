"""tools/test.py and tools/train.py with http:// checkpoints, as mmseg's tools take them.

A local HTTP server on 127.0.0.1 (a thread of the test process, shut down with the test) serves
a real checkpoint of the tiny test model; a closed port stands for a URL that does not answer.
"""

import argparse
import json
import os
from pathlib import Path

import pytest
import torch
from local_http import closed_port_url, serve_folder
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tiny_data import make_tiny_dataset

import mmseg_marginal  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(folder, base URL) of a local HTTP server that holds ``tiny.pth`` (4 classes)."""
    from mmseg.registry import MODELS

    folder = tmp_path_factory.mktemp("served")
    init_default_scope("mmseg")
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(CONFIG)).model)
    torch.save({"meta": {"iter": 0}, "state_dict": model.state_dict()}, folder / "tiny.pth")
    args = argparse.Namespace(config=str(CONFIG), seed=0)
    torch.save({"meta": {"args": args}, "state_dict": model.state_dict()}, folder / "tiny_ns.pth")
    torch.save(
        {"state_dict": {"decode_head.conv_seg.weight": torch.zeros(7, 32, 1, 1)}},
        folder / "seven.pth",
    )
    with serve_folder(folder) as base:
        yield folder, base


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def run_tool(fresh_python, tool: str, *args, torch_home: Path, **extra_env: str):
    """``python tools/<tool> args`` in a fresh process of ``fresh_python``."""
    env = dict(os.environ, **extra_env)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["TORCH_HOME"] = str(torch_home)  # mmengine downloads into torch hub's cache
    return fresh_python.run(REPO / "tools" / tool, *args, env=env, cwd=REPO, timeout=600)


def data_options(root: Path) -> list:
    return [f"{s}_dataloader.dataset.data_root={root}" for s in ("train", "val", "test")]


@pytest.mark.slow
def test_test_tool_takes_a_checkpoint_url(served, data_root, tmp_path, fresh_python):
    _, base = served
    url = f"{base}/tiny.pth"
    proc = run_tool(
        fresh_python,
        "test.py",
        CONFIG,
        url,
        "--work-dir",
        tmp_path / "work",
        "--cfg-options",
        *data_options(data_root),
        torch_home=tmp_path / "home",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f"Load checkpoint from {url}" in log
    # downloaded once (class-count check), then the Runner took it from the cache
    assert (tmp_path / "home" / "hub" / "checkpoints" / "tiny.pth").is_file()
    runs = [p for p in (tmp_path / "work").iterdir() if (p / f"{p.name}.json").is_file()]
    metrics = json.loads((runs[0] / f"{runs[0].name}.json").read_text())
    assert 0.0 <= metrics["mIoU"] <= 100.0


@pytest.mark.parametrize("case", ["closed_port", "wrong_classes"])
def test_test_tool_url_errors_are_one_line(case, served, data_root, tmp_path, fresh_python):
    _, base = served
    if case == "closed_port":
        url = closed_port_url("tiny.pth")
        expected = f"error: cannot download checkpoint {url}: "
    else:
        url = f"{base}/seven.pth"
        expected = f"error: {url} predicts 7 classes"
    proc = run_tool(
        fresh_python,
        "test.py",
        CONFIG,
        url,
        "--work-dir",
        tmp_path / "work",
        "--cfg-options",
        *data_options(data_root),
        torch_home=tmp_path / "home",
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(expected), proc.stderr[-2000:]


@pytest.mark.slow
def test_train_tool_load_from_url(served, data_root, tmp_path, fresh_python):
    _, base = served
    url = f"{base}/tiny.pth"
    proc = run_tool(
        fresh_python,
        "train.py",
        CONFIG,
        "--work-dir",
        tmp_path / "work",
        "--cfg-options",
        *data_options(data_root),
        f"load_from={url}",
        "train_cfg.max_iters=1",
        "train_cfg.val_interval=100",
        torch_home=tmp_path / "home",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert f"Load checkpoint from {url}" in log
    assert log.count(f"note: checkpoint (load_from) {url} is read through") == 1
    assert (tmp_path / "work" / "iter_1.pth").is_file()


@pytest.mark.slow
def test_test_tool_refuses_a_namespace_checkpoint_url_and_loads_it_with_the_opt_out(
    served, data_root, tmp_path, fresh_python
):
    """The allow-list of local checkpoints holds for URLs; torch's switch opts out for both."""
    _, base = served
    url = f"{base}/tiny_ns.pth"
    args = ["test.py", CONFIG, url, "--cfg-options", *data_options(data_root)]
    proc = run_tool(
        fresh_python, *args, "--work-dir", tmp_path / "w1", torch_home=tmp_path / "home"
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith(f"error: refusing to load checkpoint {url} (cached as ")
    assert "argparse.Namespace" in errors[0]
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1" in errors[0]

    proc = run_tool(
        fresh_python,
        *args,
        "--work-dir",
        tmp_path / "w2",
        torch_home=tmp_path / "home",
        TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [p for p in (tmp_path / "w2").iterdir() if (p / f"{p.name}.json").is_file()]
    metrics = json.loads((runs[0] / f"{runs[0].name}.json").read_text())
    assert 0.0 <= metrics["mIoU"] <= 100.0
