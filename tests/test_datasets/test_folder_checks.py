"""check_split_folders: the one check of a split's folders, and the paths its errors name."""

import re

import pytest

from mmseg_marginal.datasets.folder_checks import check_split_folders


def test_pairs_as_mmseg_lists_them(tmp_path):
    (tmp_path / "img/city").mkdir(parents=True)
    (tmp_path / "ann/city").mkdir(parents=True)
    for stem in ("b", "a"):
        (tmp_path / f"img/city/{stem}_left.png").write_bytes(b"")
        (tmp_path / f"ann/city/{stem}_labels.png").write_bytes(b"")
    (tmp_path / "img/city/notes.txt").write_bytes(b"")  # another suffix: not an image
    pairs = check_split_folders(
        str(tmp_path / "img"), str(tmp_path / "ann"), "_left.png", "_labels.png"
    )
    assert pairs == [
        (str(tmp_path / f"img/city/{s}_left.png"), str(tmp_path / f"ann/city/{s}_labels.png"))
        for s in ("a", "b")
    ]
    # without an annotation folder (a split without labels): images only
    images_only = check_split_folders(str(tmp_path / "img"), None, "_left.png", "")
    assert images_only == [(image, None) for image, _ in pairs]


def test_messages_name_the_dataset_or_the_config_key(tmp_path):
    (tmp_path / "img_dir/train").mkdir(parents=True)
    (tmp_path / "img_dir/train/x.png").write_bytes(b"")
    img, ann = str(tmp_path / "img_dir/train"), str(tmp_path / "ann_dir/train")
    with pytest.raises(FileNotFoundError) as err:
        check_split_folders(img, ann, ".png", ".png", where="CamVidDataset")
    assert str(err.value) == (
        f"annotation folder not found: {ann} (CamVidDataset); the images are in {img}"
    )
    # with data_root the folders are relative to it and the message names the config key
    with pytest.raises(FileNotFoundError) as err:
        check_split_folders(
            "img_dir/train",
            "ann_dir/train",
            ".png",
            ".png",
            where="train_dataloader.dataset",
            data_root=str(tmp_path),
        )
    assert str(err.value) == (
        f"annotation folder not found: {ann} (train_dataloader.dataset.data_prefix, "
        f"data_root={str(tmp_path)!r}); the images are in {img}"
    )


def test_split_file_chooses_the_images(tmp_path):
    where = dict(where="val_dataloader.dataset", data_root=str(tmp_path))
    with pytest.raises(
        FileNotFoundError,
        match=re.escape(
            f"split file not found: {tmp_path / 'splits/val.txt'} (val_dataloader.dataset.ann_file)"
        ),
    ):
        check_split_folders("img", "ann", ".jpg", ".png", ann_file="splits/val.txt", **where)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/val.txt").write_text("a\n")
    (tmp_path / "img").mkdir()
    # only the folders are checked: the empty image folder is not listed
    with pytest.raises(FileNotFoundError) as err:
        check_split_folders("img", "ann", ".jpg", ".png", ann_file="splits/val.txt", **where)
    assert str(err.value) == (
        f"data folder not found: {tmp_path / 'ann'} "
        "(val_dataloader.dataset.data_prefix.seg_map_path)"
    )
    (tmp_path / "ann").mkdir()
    assert (
        check_split_folders("img", "ann", ".jpg", ".png", ann_file="splits/val.txt", **where) == []
    )
    # no image folder in the config: only the split file is checked
    assert check_split_folders(None, None, ".jpg", ".png", ann_file="splits/val.txt", **where) == []
