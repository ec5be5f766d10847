"""CamVidDataset: void value 11 ignored, SegNet split sizes, clear errors on bad folders."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from shared_data import require_shared_data

from mmseg_marginal.datasets import CamVidDataset, SyntheticStreetsDataset


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Build pipelines in mmseg's scope whatever an earlier test left as default scope
    (``'mmseg.X'`` names fail to resolve once the default scope is already ``mmseg``)."""
    init_default_scope("mmseg")


PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]


def _fake_camvid(root: Path, names=("a", "b"), split="train", with_ann=True) -> Path:
    rng = np.random.default_rng(0)
    (root / split).mkdir(parents=True, exist_ok=True)
    if with_ann:
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(root / split / f"{name}.png"), rng.integers(0, 255, (6, 8, 3), np.uint8))
        if with_ann:
            ann = rng.integers(0, 12, (6, 8)).astype(np.uint8)
            cv2.imwrite(str(root / f"{split}annot" / f"{name}.png"), ann)
    return root


def _dataset(root, split="train", **kw):
    return CamVidDataset(
        data_root=str(root),
        data_prefix=dict(img_path=split, seg_map_path=f"{split}annot"),
        pipeline=PIPELINE,
        **kw,
    )


def test_void_11_is_mapped_to_ignore_and_classes_kept(tmp_path):
    root = _fake_camvid(tmp_path)
    ds = _dataset(root)
    assert len(ds) == 2
    assert len(ds.metainfo["classes"]) == 11
    assert ds.metainfo["classes"][10] == "Bicyclist"
    raw = cv2.imread(str(root / "trainannot" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert (raw == 11).any() and (raw == 0).any() and (raw == 10).any()
    gt = ds[0]["gt_seg_map"]
    np.testing.assert_array_equal(gt, np.where(raw == 11, 255, raw))


def test_class_subset_maps_the_rest_and_void_to_ignore(tmp_path):
    root = _fake_camvid(tmp_path)
    ds = _dataset(root, metainfo=dict(classes=("Road", "Sky")))
    raw = cv2.imread(str(root / "trainannot" / "a.png"), cv2.IMREAD_UNCHANGED)
    expected = np.full_like(raw, 255)
    expected[raw == 3] = 0
    expected[raw == 0] = 1
    np.testing.assert_array_equal(ds[0]["gt_seg_map"], expected)
    assert ds.metainfo["palette"] == [[128, 64, 128], [128, 128, 128]]


def test_missing_data_root_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"data root '{missing}' does not exist"):
        _dataset(missing)


def test_split_with_images_but_no_annotation_folder(tmp_path):
    root = _fake_camvid(tmp_path, with_ann=False)
    with pytest.raises(FileNotFoundError, match="annotation folder not found: .*trainannot"):
        _dataset(root)


def test_split_with_some_annotations_missing(tmp_path):
    root = _fake_camvid(tmp_path, names=("a", "b", "c"))
    (root / "trainannot" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"annotation not found: .*b\.png; 1 of 3 images"):
        _dataset(root)


def test_empty_or_missing_image_folder(tmp_path):
    (tmp_path / "val").mkdir()
    (tmp_path / "valannot").mkdir()
    with pytest.raises(FileNotFoundError, match="no image ending in '.png' in .*val"):
        _dataset(tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match="image folder not found: .*test"):
        _dataset(tmp_path, split="test")


def test_synthetic_dataset_has_the_same_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="SyntheticStreetsDataset: data root"):
        SyntheticStreetsDataset(
            data_root=str(tmp_path / "absent"),
            data_prefix=dict(img_path="img_dir/train", seg_map_path="ann_dir/train"),
        )


@pytest.mark.camvid
def test_real_camvid_splits():
    camvid = require_shared_data("camvid")
    train = _dataset(camvid, "train")
    val = _dataset(camvid, "val")
    assert (len(train), len(val)) == (367, 101)
    # The first validation annotation with void pixels: they become 255, the rest is kept.
    for i in range(len(val)):
        raw = cv2.imread(val[i]["seg_map_path"], cv2.IMREAD_UNCHANGED)
        if (raw == 11).any():
            break
    gt = val[i]["gt_seg_map"]
    assert gt.shape == (360, 480)
    assert raw.max() == 11 and set(np.unique(raw)) <= set(range(12))
    np.testing.assert_array_equal(gt, np.where(raw == 11, 255, raw))
