"""The pre-run checks with remote paths: URLs and non-local data roots, as mmseg accepts them.

Checkpoints are served by a local HTTP server on 127.0.0.1 (a thread of the test process that
stops with the test); a closed port stands for a URL that does not answer.
"""

import pytest
import torch
from local_http import closed_port_url, serve_folder
from mmengine.config import Config

import mmseg_marginal  # noqa: F401
from mmseg_marginal.engine.checkpoint import CheckpointLoadError
from mmseg_marginal.utils.run_checks import (
    RunCheckError,
    check_checkpoint_classes,
    check_checkpoint_path,
    check_data_folders,
    load_state_dict,
    remote_backend,
    reset_notes,
)


@pytest.fixture
def served(tmp_path):
    """(folder, base URL) of a local HTTP server; shut down after the test."""
    folder = tmp_path / "served"
    folder.mkdir()
    with serve_folder(folder) as base:
        yield folder, base


@pytest.fixture(autouse=True)
def hub_cache(tmp_path, monkeypatch):
    """mmengine downloads through torch hub: keep its cache inside the test's folder; every
    test starts with no path noted yet."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    reset_notes()


def test_backend_detection_is_mmengines():
    assert remote_backend("/data/cityscapes") is None
    assert remote_backend("data/cityscapes") is None
    assert remote_backend("https://host/x.pth") == "HTTPBackend"
    # s3:// is served by mmengine's PetrelBackend, whose client is not installed here
    assert remote_backend("s3://bucket/cityscapes") == "backend for 's3://'"
    assert remote_backend("nosuchscheme://x") == "backend for 'nosuchscheme://'"
    # backend_args choose the backend even for a path that looks local (petrel path_mapping)
    assert remote_backend("data/cityscapes", dict(backend="petrel")) == "backend 'petrel'"
    assert remote_backend("data/cityscapes", dict(backend="local")) is None


def test_remote_data_root_is_noted_once_and_not_checked(tmp_path, capsys):
    dataset = dict(
        type="BaseSegDataset",
        data_root="s3://bucket/cityscapes",
        data_prefix=dict(img_path="leftImg8bit/train", seg_map_path="gtFine/train"),
    )
    cfg = Config(dict(train_dataloader=dict(dataset=dataset), val_dataloader=dict(dataset=dataset)))
    check_data_folders(cfg, ("train",))
    check_data_folders(cfg, ("train",))
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "note: train_dataloader.dataset (data_root) s3://bucket/cityscapes is read through "
        "mmengine's backend for 's3://'; the pre-run checks look at local paths only and "
        "did not check it"
    ]
    # the path was not mangled into a local one, and a local root is still checked
    dataset["data_root"] = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
        check_data_folders(Config(dict(train_dataloader=dict(dataset=dataset))), ("train",))


def test_checkpoint_path_check(tmp_path, capsys):
    with pytest.raises(
        FileNotFoundError, match=r"checkpoint file not found: .*x.pth \(load_from\)"
    ):
        check_checkpoint_path(str(tmp_path / "x.pth"), "load_from")
    (tmp_path / "x.pth").write_bytes(b"")
    check_checkpoint_path(str(tmp_path / "x.pth"), "load_from")
    check_checkpoint_path(None, "load_from")
    check_checkpoint_path("https://host/m.pth", "load_from")
    check_checkpoint_path("https://host/m.pth", "load_from")
    assert capsys.readouterr().err.count("https://host/m.pth") == 1


def test_class_count_check_on_a_url_checkpoint(served, tmp_path):
    folder, base = served
    weight = torch.randn(4, 8, 1, 1)
    torch.save({"state_dict": {"decode_head.conv_seg.weight": weight}}, folder / "m4.pth")
    state = load_state_dict(f"{base}/m4.pth")
    assert torch.equal(state["decode_head.conv_seg.weight"], weight)
    # mmengine cached the download under torch hub's folder (the Runner reuses it)
    assert (tmp_path / "torch_home" / "hub" / "checkpoints" / "m4.pth").is_file()
    check_checkpoint_classes(state, dict(decode_head=dict(num_classes=4)), f"{base}/m4.pth")
    with pytest.raises(RunCheckError, match=f"{base}/m4.pth predicts 4 classes"):
        check_checkpoint_classes(state, dict(decode_head=dict(num_classes=19)), f"{base}/m4.pth")


def test_url_that_does_not_answer(served):
    _, base = served
    url = closed_port_url("model.pth")
    with pytest.raises(CheckpointLoadError) as err:
        load_state_dict(url)
    message = str(err.value)
    assert message.startswith(f"cannot download checkpoint {url}: ")
    assert "\n" not in message
    with pytest.raises(CheckpointLoadError, match=f"cannot download checkpoint {base}/absent.pth"):
        load_state_dict(f"{base}/absent.pth")  # the server answers 404


def test_url_that_is_not_a_checkpoint(served):
    folder, base = served
    (folder / "page.pth").write_text("<html>not a checkpoint</html>" * 20)
    with pytest.raises(CheckpointLoadError, match=f"checkpoint {base}/page.pth"):
        load_state_dict(f"{base}/page.pth")


def test_local_errors_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        load_state_dict(str(tmp_path / "absent.pth"))
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint" * 64)
    with pytest.raises(CheckpointLoadError, match=f"cannot read checkpoint {tmp_path / 'bad.pth'}"):
        load_state_dict(str(tmp_path / "bad.pth"))
