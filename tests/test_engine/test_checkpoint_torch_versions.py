"""Checkpoint loading on every supported torch, and the two environment switches.

Older torch APIs are simulated on the installed torch: ``torch.load`` defaulting to
``weights_only=False`` (torch < 2.6), no ``add_safe_globals`` (torch < 2.4), ``add_safe_globals``
without ``(object, name)`` tuples (torch 2.4-2.5). The simulation is applied before
``mmseg_marginal`` is imported, in a fresh process, because the set-up runs at import: each
scenario runs in its own fresh process (the ``fresh_python`` fixture: forked from an interpreter
that has imported torch, mmengine and mmseg, never this package).
"""

import argparse
import json
import os
from pathlib import Path

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

from mmseg_marginal.engine import checkpoint as ckpt_mod
from mmseg_marginal.engine.checkpoint import (
    CheckpointLoadError,
    load_from_local_safe,
    mmengine_checkpoint_globals,
    setup_checkpoint_loading,
)

REPO = Path(__file__).resolve().parents[2]

DRIVER = r"""
import argparse, dataclasses, json, os, sys
import numpy as np
import torch

scenario, tmp = sys.argv[1], sys.argv[2]
passed_tuple = []
# torch's own modules that call add_safe_globals at import (the simulated torch would not have
# them do so), and mmengine/mmseg, which do not touch it: imported before the simulation
import torch.distributed.tensor  # noqa: F401
import mmengine.runner  # noqa: F401
import mmseg.models  # noqa: F401

real_load = torch.load
def load_defaulting_to_false(*args, weights_only=None, **kwargs):  # torch < 2.6
    return real_load(*args, weights_only=bool(weights_only), **kwargs)

if scenario in ("torch_2.3", "torch_2.5"):
    torch.load = load_defaulting_to_false
if scenario == "torch_2.3":
    for name in ("add_safe_globals", "get_safe_globals", "safe_globals", "clear_safe_globals"):
        if hasattr(torch.serialization, name):
            delattr(torch.serialization, name)
if scenario in ("torch_2.5", "no_tuples"):
    real_add = torch.serialization.add_safe_globals
    def add_without_tuples(entries):
        entries = list(entries)
        if any(isinstance(e, tuple) for e in entries):
            passed_tuple.append(True)
            raise TypeError("simulated add_safe_globals: no (object, name) tuples")
        real_add(entries)
    torch.serialization.add_safe_globals = add_without_tuples

import mmseg_marginal  # noqa: E402  (the set-up under test runs here)
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from mmseg_marginal.engine.checkpoint import CHECKPOINT_SETUP

out = {"setup": dataclasses.asdict(CHECKPOINT_SETUP), "passed_tuple": bool(passed_tuple)}
out["local_loader"] = CheckpointLoader._schemes[""].__name__

hub = MessageHub("drv")
for v in (0.5, 0.25):
    hub.update_scalar("train/loss", v)
path = os.path.join(tmp, "iter_7.pth")
torch.save({"meta": {"iter": 7, "seed": np.int64(3)}, "state_dict": {"w": torch.ones(2)},
            "message_hub": hub.state_dict()}, path)

def attempt(fn):
    try:
        return {"ok": fn()}
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)[:400]}

def round_trip():
    loaded = CheckpointLoader.load_checkpoint(path, map_location="cpu")
    buf = loaded["message_hub"]["log_scalars"]["train/loss"]
    return [type(buf).__name__, float(buf.mean()), float(buf.min()), loaded["meta"]["iter"]]
out["round_trip"] = attempt(round_trip)

plain = os.path.join(tmp, "plain.pth")
torch.save({"w": torch.arange(3.0)}, plain)
out["plain_weights_only"] = attempt(
    lambda: real_load(plain, weights_only=True)["w"].tolist())

class GetattrEscape:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, "__init__"))

foreign = os.path.join(tmp, "foreign.pth")
torch.save({"state_dict": {}, "args": argparse.Namespace(lr=0.1)}, foreign)
escape = os.path.join(tmp, "escape.pth")
torch.save({"state_dict": {}, "x": GetattrEscape()}, escape)
out["foreign"] = attempt(lambda: vars(CheckpointLoader.load_checkpoint(foreign)["args"]))
out["escape"] = attempt(lambda: repr(CheckpointLoader.load_checkpoint(escape)["x"]))
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # set after import: read at load time
out["foreign_torch_switch"] = attempt(
    lambda: vars(CheckpointLoader.load_checkpoint(foreign)["args"]))
print("RESULT " + json.dumps(out))
"""


SCENARIOS = {
    # name: (simulated torch, environment at start)
    "current": ("current", {}),
    "no_tuples": ("no_tuples", {}),
    "torch_2.5": ("torch_2.5", {}),
    "torch_2.3": ("torch_2.3", {}),
    "torch_switch": ("current", {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}),
    "package_switch": ("current", {"MMSEG_MARGINAL_SAFE_LOAD": "0"}),
}


@pytest.fixture(scope="module")
def scenario_results(tmp_path_factory, fresh_python) -> dict:
    """The driver's result of every scenario, each in its own fresh process."""
    root = tmp_path_factory.mktemp("torch_versions")
    switches = ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "MMSEG_MARGINAL_SAFE_LOAD")
    env = {k: v for k, v in os.environ.items() if k not in switches}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    results = {}
    for name, (simulated, env_extra) in SCENARIOS.items():
        (root / name).mkdir()
        proc = fresh_python.run(
            None, simulated, root / name, code=DRIVER, env={**env, **env_extra}, timeout=300
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, name + proc.stdout[-2000:] + proc.stderr[-3000:]
        results[name] = json.loads(lines[-1][len("RESULT ") :])
    return results


ROUND_TRIP = {"ok": ["HistoryBuffer", 0.375, 0.25, 7]}
NAMESPACE = {"ok": {"lr": 0.1}}


@pytest.mark.parametrize("scenario", ["current", "no_tuples"])
def test_fix_active_where_torch_defaults_to_weights_only(scenario, scenario_results):
    """torch >= 2.6, and a torch whose add_safe_globals takes no tuples: allow-list applied."""
    out = scenario_results[scenario]
    assert out["setup"]["allow_list"] and out["setup"]["local_loader"]
    assert out["local_loader"] == "load_from_local_safe"
    assert not out["passed_tuple"]  # only plain entries: the form every add_safe_globals takes
    assert out["round_trip"] == ROUND_TRIP
    assert out["plain_weights_only"] == {"ok": [0.0, 1.0, 2.0]}
    # foreign globals are still refused, naming the file and the global
    assert out["foreign"]["error"] == "CheckpointLoadError"
    assert "foreign.pth" in out["foreign"]["message"]
    assert "argparse.Namespace" in out["foreign"]["message"]
    assert out["escape"]["error"] == "CheckpointLoadError"
    assert "getattr(" in out["escape"]["message"] or "__init__" in out["escape"]["message"]
    # torch's own switch still works through the package's loader (trusted files only)
    assert out["foreign_torch_switch"] == NAMESPACE


@pytest.mark.parametrize("scenario", ["torch_2.5", "torch_2.3"])
def test_nothing_changed_where_torch_does_not_default_to_weights_only(scenario, scenario_results):
    """torch < 2.6 (with and without add_safe_globals): import works, mmengine's loader stays."""
    out = scenario_results[scenario]
    assert out["setup"]["allow_list"] is False and out["setup"]["local_loader"] is False
    assert "weights_only" in out["setup"]["reason"] or "add_safe_globals" in out["setup"]["reason"]
    assert out["local_loader"] == "load_from_local"  # mmengine's own
    assert not out["passed_tuple"]
    assert out["round_trip"] == ROUND_TRIP
    # the weights-only loads of other code are not broken by anything registered here
    assert out["plain_weights_only"] == {"ok": [0.0, 1.0, 2.0]}
    # as on that torch without this package: torch.load unpickles the Namespace
    assert out["foreign"] == NAMESPACE


def test_torch_switch_at_import_keeps_torch_behaviour(scenario_results):
    out = scenario_results["torch_switch"]
    assert out["setup"]["allow_list"] is False
    assert out["local_loader"] == "load_from_local"
    assert out["round_trip"] == ROUND_TRIP
    assert out["foreign"] == NAMESPACE  # a trusted checkpoint with an argparse.Namespace


def test_package_switch_leaves_torch_and_mmengine_alone(scenario_results):
    out = scenario_results["package_switch"]
    assert out["setup"] == {
        "allow_list": False,
        "local_loader": False,
        "http_loader": False,
        "reason": "MMSEG_MARGINAL_SAFE_LOAD=0",
    }
    assert out["local_loader"] == "load_from_local"
    # exactly plain mmengine on torch >= 2.6: torch's own refusal, torch's own error type ...
    assert out["round_trip"]["error"] == "UnpicklingError"
    assert out["foreign"]["error"] == "UnpicklingError"
    # ... and torch's own switch for a trusted file
    assert out["foreign_torch_switch"] == NAMESPACE


# ------------------------------------------------------------------------------- in-process


def test_torch_switch_set_after_import(tmp_path, monkeypatch):
    path = tmp_path / "trusted.pth"
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=0.1, epochs=3)}, path)
    with pytest.raises(CheckpointLoadError, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"):
        load_from_local_safe(str(path))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    loaded = load_from_local_safe(str(path))
    assert vars(loaded["args"]) == {"lr": 0.1, "epochs": 3}


def test_setup_rerun_switches_loaders_off_and_on(monkeypatch):
    assert CheckpointLoader._schemes[""] is load_from_local_safe
    try:
        monkeypatch.setenv("MMSEG_MARGINAL_SAFE_LOAD", "0")
        setup = setup_checkpoint_loading()
        assert not setup.allow_list and not setup.local_loader and not setup.http_loader
        assert CheckpointLoader._schemes[""] is load_from_local
        assert CheckpointLoader._schemes["http://"].__module__ == "mmengine.runner.checkpoint"
    finally:
        monkeypatch.delenv("MMSEG_MARGINAL_SAFE_LOAD")
        setup = setup_checkpoint_loading()
    assert setup.local_loader and CheckpointLoader._schemes[""] is load_from_local_safe
    assert CheckpointLoader._schemes["https://"] is ckpt_mod.load_from_http_safe


def test_allow_list_entries_are_plain_and_named_as_pickled():
    entries = mmengine_checkpoint_globals()
    assert not any(isinstance(e, tuple) for e in entries)
    names = {f"{e.__module__}.{e.__qualname__}" for e in entries}
    assert "builtins.getattr" in names
    assert "mmengine.logging.history_buffer.HistoryBuffer" in names
    stand_in = next(e for e in entries if e.__qualname__ == "getattr")
    assert stand_in(HistoryBuffer, "mean") is HistoryBuffer.mean
    with pytest.raises(Exception, match="not allowed"):
        stand_in(os, "system")
    registered = torch.serialization.get_safe_globals()
    assert stand_in in registered and HistoryBuffer in registered
