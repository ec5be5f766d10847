"""Remote checkpoints load under the allow-list of local ones, through every scheme of mmengine's
``CheckpointLoader``, with the same opt-out (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``) and the same
one-line refusal; torch hub's cache is keyed by file name.

The checkpoints are served by a local HTTP server on 127.0.0.1 (a thread of the test process that
stops with the test); a closed port stands for a URL that does not answer. torch hub's cache and
``MMENGINE_HOME`` are folders of the test.
"""

import argparse
import io
import json
import os

import pytest
import torch
from local_http import closed_port_url, serve_folder
from mmengine.runner import checkpoint as mm
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

import mmseg_marginal  # noqa: F401 - installs the loaders
from mmseg_marginal.engine import checkpoint as ckpt_mod
from mmseg_marginal.engine.checkpoint import CheckpointLoadError, hub_cache_path

NAMESPACE = argparse.Namespace(lr=0.1, epochs=3)


class _WritesAFile:
    """Unpickling it would run ``touch <marker>``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(folder, base URL): ``ns.pth`` pickles an ``argparse.Namespace``, ``ok.pth`` is a plain
    mmengine-style checkpoint, ``evil.pth`` would run a command. torch hub's cache is
    ``tmp_path/home``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    folder = tmp_path / "served"
    folder.mkdir()
    weight = torch.arange(6.0).reshape(2, 3)
    torch.save({"state_dict": {"weight": weight}, "meta": {"args": NAMESPACE}}, folder / "ns.pth")
    torch.save({"state_dict": {"weight": weight}, "meta": {"iter": 5}}, folder / "ok.pth")
    marker = tmp_path / "payload_ran"
    torch.save({"state_dict": {}, "meta": {"x": _WritesAFile(str(marker))}}, folder / "evil.pth")
    with serve_folder(folder) as base:
        yield folder, base, marker


def test_http_checkpoint_is_refused_like_a_local_one_and_loads_with_the_opt_out(
    served, monkeypatch
):
    _, base, _ = served
    url = f"{base}/ns.pth"
    with pytest.raises(CheckpointLoadError) as err:
        CheckpointLoader.load_checkpoint(url, map_location="cpu")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"refusing to load checkpoint {url} (cached as ")
    assert "argparse.Namespace" in message
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1" in message
    # mmengine's load_checkpoint (init_cfg Pretrained, Runner.load_checkpoint) goes the same way
    model = torch.nn.Linear(3, 2, bias=False)
    with pytest.raises(CheckpointLoadError, match="argparse.Namespace"):
        load_checkpoint(model, url, map_location="cpu")

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    loaded = CheckpointLoader.load_checkpoint(url, map_location="cpu")
    assert loaded["meta"]["args"] == NAMESPACE
    assert torch.equal(loaded["state_dict"]["weight"], torch.arange(6.0).reshape(2, 3))


def test_http_checkpoint_with_allow_listed_content_loads(served):
    _, base, _ = served
    model = torch.nn.Linear(3, 2, bias=False)
    ckpt = load_checkpoint(model, f"{base}/ok.pth", map_location="cpu")
    assert ckpt["meta"] == {"iter": 5}
    assert torch.equal(model.weight.data, torch.arange(6.0).reshape(2, 3))


def test_payload_from_a_url_never_runs(served):
    _, base, marker = served
    with pytest.raises(CheckpointLoadError, match="posix.system"):
        CheckpointLoader.load_checkpoint(f"{base}/evil.pth", map_location="cpu")
    assert not marker.exists()


def test_unreachable_url_with_a_cached_file_name_loads_the_cache_under_the_allow_list(
    served, tmp_path
):
    folder, base, marker = served
    # the cache is keyed by the URL's file name only
    assert hub_cache_path(f"{base}/a/ok.pth") == str(tmp_path / "home/hub/checkpoints/ok.pth")
    assert hub_cache_path("https://other.host/x/ok.pth?token=1") == hub_cache_path(f"{base}/ok.pth")
    dead = closed_port_url("ok.pth")
    with pytest.raises(CheckpointLoadError, match=f"cannot download checkpoint {dead}: "):
        CheckpointLoader.load_checkpoint(dead, map_location="cpu")
    CheckpointLoader.load_checkpoint(f"{base}/ok.pth", map_location="cpu")  # now cached
    loaded = CheckpointLoader.load_checkpoint(dead, map_location="cpu")
    assert loaded["meta"] == {"iter": 5}
    # a cached file is no way around the allow-list
    (tmp_path / "home/hub/checkpoints/evil.pth").write_bytes((folder / "evil.pth").read_bytes())
    with pytest.raises(CheckpointLoadError, match="refusing to load checkpoint"):
        CheckpointLoader.load_checkpoint(closed_port_url("evil.pth"), map_location="cpu")
    assert not marker.exists()


def test_open_mmlab_and_torchvision_names_resolve_to_the_safe_http_loader(
    served, tmp_path, monkeypatch
):
    folder, base, _ = served
    home = tmp_path / "mmengine_home"
    home.mkdir()
    (home / "open_mmlab.json").write_text(
        json.dumps({"ns_model": f"{base}/ns.pth", "ok_model": f"{base}/ok.pth", "local": "f.pth"})
    )
    torch.save({"state_dict": {}, "args": NAMESPACE}, home / "f.pth")
    monkeypatch.setenv("MMENGINE_HOME", str(home))
    monkeypatch.setattr(mm, "get_torchvision_models", lambda: {"tv_ns": f"{base}/ns.pth"})
    monkeypatch.setattr(mm, "get_mmcls_models", lambda: {"cls_ns": f"{base}/ns.pth"})
    for name in (
        "open-mmlab://ns_model",
        "openmmlab://ns_model",
        "torchvision://tv_ns",
        "modelzoo://tv_ns",
        "mmcls://cls_ns",
    ):
        with pytest.raises(CheckpointLoadError, match="refusing to load checkpoint http") as err:
            CheckpointLoader.load_checkpoint(name, map_location="cpu")
        assert "argparse.Namespace" in str(err.value), name
    with pytest.raises(CheckpointLoadError, match=f"refusing to load checkpoint {home}/f.pth"):
        CheckpointLoader.load_checkpoint("open-mmlab://local", map_location="cpu")
    assert CheckpointLoader.load_checkpoint("open-mmlab://ok_model")["meta"] == {"iter": 5}
    with pytest.raises(CheckpointLoadError, match="unknown model name 'nope' for open-mmlab://"):
        CheckpointLoader.load_checkpoint("open-mmlab://nope")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    assert CheckpointLoader.load_checkpoint("torchvision://tv_ns")["meta"]["args"] == NAMESPACE


def test_other_schemes_keep_their_loader_and_get_the_one_line_refusal(served, monkeypatch):
    folder, _, marker = served
    payload = (folder / "evil.pth").read_bytes()

    def load_from_fake(filename, map_location=None):  # like mmengine's s3/pavi loaders
        return torch.load(io.BytesIO(payload), map_location=map_location)

    monkeypatch.setitem(CheckpointLoader._schemes, "fake://", load_from_fake)
    ckpt_mod.register_remote_loaders()
    try:
        wrapped = CheckpointLoader._schemes["fake://"]
        assert wrapped is not load_from_fake and wrapped.__wrapped__ is load_from_fake
        with pytest.raises(CheckpointLoadError, match="refusing to load checkpoint fake://x"):
            CheckpointLoader.load_checkpoint("fake://x")
        assert not marker.exists()
        # mmengine's own other schemes are wrapped too
        for prefix in ("pavi://", r"(\S+\:)?s3://", r"(\S+\:)?petrel://"):
            original = CheckpointLoader._schemes[prefix].__wrapped__
            assert original.__module__ == "mmengine.runner.checkpoint", prefix
    finally:
        CheckpointLoader._schemes.pop("fake://", None)
        ckpt_mod._MMENGINE_LOADERS.pop("fake://", None)
