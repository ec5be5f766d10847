"""The checks tools/train.py and tools/test.py run before building a Runner."""

import pytest
import torch
from mmengine.config import Config

import mmseg_marginal  # noqa: F401
from mmseg_marginal.utils.run_checks import (
    RunCheckError,
    check_checkpoint_classes,
    check_data_folders,
    check_loss_types,
    check_new_run_keeps_checkpoints,
)


def model_with_losses(aux_losses) -> Config:
    return Config(
        dict(
            model=dict(
                decode_head=dict(loss_decode=dict(type="CrossEntropyLoss")),
                auxiliary_head=[dict(loss_decode=aux_losses)],
            )
        )
    )


def test_known_losses_pass_including_scoped_names():
    check_loss_types(model_with_losses([dict(type="mmseg.DiceLoss"), dict(type="FocalLoss")]))


def test_unknown_loss_is_named_with_its_place():
    cfg = model_with_losses([dict(type="CrossEntropyLoss"), dict(type="CrossEntropyLos")])
    with pytest.raises(RunCheckError) as err:
        check_loss_types(cfg)
    message = str(err.value)
    assert "'CrossEntropyLos'" in message
    assert "model.auxiliary_head[0].loss_decode[1]" in message


def dataset_cfg(root, prefix="img_dir/train") -> dict:
    return dict(
        type="BaseSegDataset",
        data_root=str(root),
        img_suffix=".png",
        data_prefix=dict(img_path=prefix, seg_map_path="ann_dir/train"),
    )


def test_data_folders(tmp_path):
    (tmp_path / "img_dir/train").mkdir(parents=True)
    (tmp_path / "ann_dir/train").mkdir(parents=True)
    wrapped = dict(type="RepeatDataset", times=2, dataset=dataset_cfg(tmp_path))
    cfg = Config(dict(train_dataloader=dict(dataset=wrapped)))
    with pytest.raises(FileNotFoundError, match=r"no image ending in '.png' in .*img_dir/train"):
        check_data_folders(cfg, ("train",))
    (tmp_path / "img_dir/train/a.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as err:
        check_data_folders(cfg, ("train",))
    assert f"annotation not found: {tmp_path / 'ann_dir/train/a.png'}" in str(err.value)
    (tmp_path / "ann_dir/train/a.png").write_bytes(b"")
    check_data_folders(cfg, ("train", "val"))  # val absent from the config: not checked

    cfg.train_dataloader.dataset.dataset.data_prefix.img_path = "img_dir/nope"
    with pytest.raises(FileNotFoundError) as err:
        check_data_folders(cfg, ("train",))
    assert str(tmp_path / "img_dir/nope") in str(err.value)
    assert "train_dataloader.dataset.dataset.data_prefix" in str(err.value)


def test_suffixes_default_to_the_dataset_class(tmp_path):
    # CityscapesDataset's defaults: _leftImg8bit.png images, _gtFine_labelTrainIds.png labels.
    (tmp_path / "leftImg8bit/val/city").mkdir(parents=True)
    (tmp_path / "gtFine/val/city").mkdir(parents=True)
    (tmp_path / "leftImg8bit/val/city/x_000000_000019_leftImg8bit.png").write_bytes(b"")
    dataset = dict(
        type="CityscapesDataset",
        data_root=str(tmp_path),
        data_prefix=dict(img_path="leftImg8bit/val", seg_map_path="gtFine/val"),
    )
    cfg = Config(dict(val_dataloader=dict(dataset=dataset)))
    with pytest.raises(FileNotFoundError, match="x_000000_000019_gtFine_labelTrainIds.png"):
        check_data_folders(cfg, ("val",))
    (tmp_path / "gtFine/val/city/x_000000_000019_gtFine_labelTrainIds.png").write_bytes(b"")
    check_data_folders(cfg, ("val",))


def test_checkpoint_class_count_must_match_the_config():
    model = dict(decode_head=dict(num_classes=19), auxiliary_head=dict(num_classes=19))
    good = {"decode_head.conv_seg.weight": torch.zeros(19, 8, 1, 1)}
    check_checkpoint_classes(good, model, "ok.pth")
    bad = {**good, "auxiliary_head.conv_seg.weight": torch.zeros(11, 8, 1, 1)}
    with pytest.raises(RunCheckError, match="bad.pth predicts 11 classes .* num_classes=19"):
        check_checkpoint_classes(bad, model, "bad.pth")


def test_new_run_never_overwrites_checkpoints(tmp_path):
    check_new_run_keeps_checkpoints(str(tmp_path / "fresh"), resume=False)
    (tmp_path / "iter_4.pth").write_bytes(b"x")
    with pytest.raises(RunCheckError, match="already holds checkpoints \\(iter_4.pth\\)"):
        check_new_run_keeps_checkpoints(str(tmp_path), resume=False)
    check_new_run_keeps_checkpoints(str(tmp_path), resume=True)
