"""Loading mmengine checkpoints with torch.load(weights_only=True)."""

import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmseg_marginal.engine.checkpoint import (
    CheckpointLoadError,
    load_from_local_safe,
    mmengine_checkpoint_globals,
)


def mmengine_like_checkpoint() -> dict:
    """What mmengine's Runner.save_checkpoint stores, built with mmengine's own objects."""
    hub = MessageHub("ckpt-test")
    for value in (0.5, 0.25):
        hub.update_scalar("train/loss", value)
        hub.update_scalar("train/lr", np.float64(0.01))
    hub.update_info("iter", 7)
    return {
        "meta": {"iter": 7, "seed": np.int64(3), "hist": np.arange(3.0)},
        "state_dict": {"w": torch.ones(2)},
        "message_hub": hub.state_dict(),
    }


def test_mmengine_checkpoint_round_trip(tmp_path):
    path = tmp_path / "iter_7.pth"
    torch.save(mmengine_like_checkpoint(), path)
    loaded = load_from_local_safe(str(path))
    buffer = loaded["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(0.375) and buffer.min() == 0.25
    assert loaded["meta"]["hist"].tolist() == [0.0, 1.0, 2.0]
    # mmengine's own loader (used by Runner.load_checkpoint and --resume) is ours now.
    via_mmengine = CheckpointLoader.load_checkpoint(str(path), map_location="cpu")
    assert torch.equal(via_mmengine["state_dict"]["w"], torch.ones(2))


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


class _GetattrEscape:
    """getattr on the allow-listed class, aiming at something other than a public method."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, "__init__"))


class _Unknown:
    pass


@pytest.mark.parametrize(
    "payload, reason",
    [
        (_Payload(), "posix.system"),
        (_Unknown(), "_Unknown"),
        (_GetattrEscape(), "getattr("),
    ],
)
def test_other_globals_are_refused_with_the_reason(tmp_path, payload, reason):
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": {}, "x": payload}, path)
    with pytest.raises(CheckpointLoadError, match="refusing to load checkpoint|cannot read") as err:
        load_from_local_safe(str(path))
    assert str(path) in str(err.value)
    assert reason in str(err.value) or reason in str(err.value.__cause__)


def test_getattr_stand_in_refuses_non_methods(tmp_path):
    # the entry that mmengine_checkpoint_globals() allow-lists under the name builtins.getattr
    (stand_in,) = [
        entry
        for entry in mmengine_checkpoint_globals()
        if f"{entry.__module__}.{entry.__qualname__}" == "builtins.getattr"
    ]
    assert stand_in is not getattr
    assert stand_in(HistoryBuffer, "max") is HistoryBuffer.max
    for obj, name in (
        (HistoryBuffer, "__init__"),
        (HistoryBuffer, "_statistics_methods"),
        (os, "system"),
    ):
        with pytest.raises(pickle.UnpicklingError, match="not allowed"):
            stand_in(obj, name)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*absent.pth"):
        load_from_local_safe(str(tmp_path / "absent.pth"))
    good = tmp_path / "good.pth"
    torch.save(mmengine_like_checkpoint(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointLoadError, match=f"cannot read checkpoint {truncated}"):
        load_from_local_safe(str(truncated))
