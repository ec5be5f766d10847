"""DRIVE field of view: ApplyFOVMask and DRIVEFOVDataset on a fake layout and on the real data."""

from pathlib import Path

import numpy as np
import pytest
from drive_data import make_fake_drive, require_drive
from mmengine.registry import init_default_scope
from mmseg.datasets import DRIVEDataset
from mmseg.registry import DATASETS, TRANSFORMS
from PIL import Image

from mmseg_marginal.datasets import ApplyFOVMask, DRIVEFOVDataset, fov_mask_path

PIPELINE = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"), dict(type="ApplyFOVMask")]


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope("mmseg")


def _dataset(root, split="training", cls=DRIVEFOVDataset, **kw):
    return cls(
        data_root=str(root),
        data_prefix=dict(img_path=f"images/{split}", seg_map_path=f"annotations/{split}"),
        pipeline=PIPELINE,
        **kw,
    )


def _read(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def test_registered():
    assert DATASETS.get("DRIVEFOVDataset") is DRIVEFOVDataset
    assert TRANSFORMS.get("ApplyFOVMask") is ApplyFOVMask
    assert DRIVEFOVDataset.METAINFO["classes"] == ("background", "vessel")


def test_mask_path_from_image_path():
    assert (
        fov_mask_path("data/drive/images/training/21_training.png")
        == "data/drive/masks/training/21_training_mask.png"
    )
    # the last 'images' folder is the one replaced
    assert fov_mask_path("/x/images/drive/images/validation/01_test.png") == (
        "/x/images/drive/masks/validation/01_test_mask.png"
    )
    with pytest.raises(ValueError, match="mask of '/data/img/01.png': no folder named 'images'"):
        fov_mask_path("/data/img/01.png")


@pytest.mark.parametrize("cls", [DRIVEFOVDataset, DRIVEDataset])
def test_outside_the_fov_is_ignored(tmp_path, cls):
    root = make_fake_drive(tmp_path)
    ds = _dataset(root, cls=cls)  # mmseg's DRIVEDataset: the mask path comes from img_path
    assert len(ds) == 2
    for i, stem in enumerate(("21_training", "22_training")):
        sample = ds[i]
        raw = _read(root / "annotations" / "training" / f"{stem}_manual1.png")
        mask = _read(root / "masks" / "training" / f"{stem}_mask.png")
        assert 0 < (mask == 0).sum() < mask.size
        np.testing.assert_array_equal(sample["gt_seg_map"], np.where(mask == 0, 255, raw))
        assert sample["fov_path"] == str(root / "masks" / "training" / f"{stem}_mask.png")


def test_whole_image_option(tmp_path):
    root = make_fake_drive(tmp_path)
    sample = _dataset(root, fov=False)[0]
    raw = _read(root / "annotations" / "training" / "21_training_manual1.png")
    np.testing.assert_array_equal(sample["gt_seg_map"], raw)
    assert sample["fov_path"] is None
    with pytest.raises(ValueError, match="fov must be True or False"):
        _dataset(root, fov="yes")


def test_missing_mask_one_error_naming_it(tmp_path):
    root = make_fake_drive(tmp_path)
    missing = root / "masks" / "training" / "22_training_mask.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=f"mask not found: {missing} \\(1 of 2 images"):
        _dataset(root)
    _dataset(root, fov=False)  # the whole image does not need the masks
    # with mmseg's dataset the transform finds the gap when the sample is loaded
    ds = _dataset(root, cls=DRIVEDataset)
    with pytest.raises(FileNotFoundError, match=f"mask not found: {missing}"):
        ds[1]


def test_mask_of_another_size(tmp_path):
    root = make_fake_drive(tmp_path)
    path = root / "masks" / "training" / "21_training_mask.png"
    Image.fromarray(np.ones((10, 10), np.uint8)).save(path)
    with pytest.raises(ValueError, match=r"\(10, 10\) but the annotation .* \(20, 24\)"):
        _dataset(root)[0]


def test_needs_the_annotation_of_a_sample_that_has_one():
    """Placed before LoadAnnotations in a training pipeline: one error naming the annotation."""
    transform = ApplyFOVMask()
    sample = dict(
        img_path="d/images/training/1.png",
        seg_map_path="d/annotations/training/1_manual1.png",
        fov_path="d/masks/training/1_mask.png",
    )
    with pytest.raises(KeyError, match="1_manual1.png: put it after LoadAnnotations"):
        transform(sample)


@pytest.mark.parametrize(
    "sample",
    [
        dict(img=np.zeros((4, 5, 3), np.uint8), img_path=None),  # an array (inference_model)
        dict(img=np.zeros((4, 5, 3), np.uint8), img_path="x/images/test/1.png"),  # a file
        dict(img=np.zeros((4, 5, 3), np.uint8), img_path="any.png", seg_map_path=None),
    ],
)
def test_a_sample_without_annotation_passes_unchanged(sample):
    """Inference pipelines (LoadAnnotations dropped): nothing to mask, no mask file read."""
    out = ApplyFOVMask()(dict(sample))
    assert out.keys() == sample.keys()
    assert out["img"] is sample["img"] and out["img_path"] == sample["img_path"]


@pytest.mark.drive
def test_real_drive_fov_share():
    """On the real data: the masks cover the disc; inside them vessels are 12.73 % of the
    validation pixels (the figure of the data's README, 8.76 % of the whole image)."""
    root = require_drive()
    fov = _dataset(root, split="validation")
    whole = _dataset(root, split="validation", fov=False)
    assert len(fov) == len(whole) == 20
    counts = np.zeros((2, 3))
    for i in range(len(fov)):
        a, b = fov[i]["gt_seg_map"], whole[i]["gt_seg_map"]
        assert a.shape == b.shape == (584, 565)
        assert set(np.unique(a)) <= {0, 1, 255} and set(np.unique(b)) <= {0, 1}
        np.testing.assert_array_equal(a[a != 255], b[a != 255])
        counts[0] += [(a == 1).sum(), (a != 255).sum(), (a == 255).sum()]
        counts[1] += [(b == 1).sum(), b.size, 0]
    assert 100 * counts[0, 0] / counts[0, 1] == pytest.approx(12.73, abs=0.005)
    assert 100 * counts[1, 0] / counts[1, 1] == pytest.approx(8.76, abs=0.005)
    # the mask only removes pixels (a few annotated vessel pixels lie outside it)
    assert counts[0, 0] <= counts[1, 0] and counts[0, 1] + counts[0, 2] == counts[1, 1]
