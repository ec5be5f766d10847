"""generate_synthetic_vessels and SyntheticVesselsDataset: the demo's built-in binary data."""

import hashlib
import json

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_marginal.datasets import SyntheticVesselsDataset, generate_synthetic_vessels
from mmseg_marginal.datasets.synthetic_vessels import VESSEL_CLASSES, draw_vessel_image


def _digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png"))
    }


def test_layout_labels_and_meta(tmp_path):
    root = generate_synthetic_vessels(tmp_path / "v", num_train=4, num_val=3, size=48, seed=1)
    for split, num in (("train", 4), ("val", 3)):
        images = sorted((root / "img_dir" / split).glob("*.png"))
        labels = sorted((root / "ann_dir" / split).glob("*.png"))
        assert [p.name for p in images] == [f"{i:05d}.png" for i in range(num)]
        assert [p.name for p in labels] == [p.name for p in images]
        for img, lab in zip(images, labels):
            assert cv2.imread(str(img)).shape == (48, 48, 3)
            label = cv2.imread(str(lab), cv2.IMREAD_UNCHANGED)
            assert label.shape == (48, 48) and label.dtype == np.uint8
            assert set(np.unique(label)) <= {0, 1} and label.any()  # every image has vessels
    meta = json.loads((root / "meta.json").read_text())
    assert (meta["num_train"], meta["num_val"], meta["size"], meta["seed"]) == (4, 3, 48, 1)
    assert meta["classes"] == list(VESSEL_CLASSES)
    # The stated shares are those of the training labels on disk.
    counts = np.zeros(2)
    for p in (root / "ann_dir" / "train").glob("*.png"):
        counts += np.bincount(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ravel(), minlength=2)
    assert meta["train_pixel_share"]["vessel"] == round(counts[1] / counts.sum(), 6)
    assert meta["train_pixel_share"]["background"] == round(counts[0] / counts.sum(), 6)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = generate_synthetic_vessels(tmp_path / "a", num_train=3, num_val=2, seed=5)
    b = generate_synthetic_vessels(tmp_path / "b", num_train=3, num_val=2, seed=5)
    c = generate_synthetic_vessels(tmp_path / "c", num_train=3, num_val=2, seed=6)
    assert _digests(a) == _digests(b)
    assert len(_digests(a)) == 10
    differ = [k for k, v in _digests(a).items() if _digests(c)[k] != v]
    assert len(differ) == 10
    # Image i of a split does not depend on how many images the split has.
    d = generate_synthetic_vessels(tmp_path / "d", num_train=1, num_val=1, seed=5)
    assert _digests(d)["img_dir/train/00000.png"] == _digests(a)["img_dir/train/00000.png"]


def test_vessels_are_darker_than_the_background():
    """The image carries the label: vessel pixels are darker on average in every image."""
    for i in range(10):
        rgb, label = draw_vessel_image(np.random.default_rng([0, 0, i]), 64, 64)
        grey = rgb.astype(float).mean(axis=-1)
        assert grey[label == 1].mean() < grey[label == 0].mean() - 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_train=0), "num_train must be in [1, 1000000], got 0"),
        (dict(num_val=-1), "num_val must be in [1, 1000000], got -1"),
        (dict(size=16), "size must be in [32, 1024], got 16"),
        (dict(size=64.0), "size must be an integer, got 64.0"),
        (dict(seed=-3), "seed must be in [0, 4294967295], got -3"),
    ],
)
def test_bad_arguments_are_one_clear_error(tmp_path, kwargs, message):
    with pytest.raises(ValueError) as err:
        generate_synthetic_vessels(tmp_path / "x", **kwargs)
    assert str(err.value) == message
    assert not (tmp_path / "x").exists()


def test_dataset_is_registered_and_reads_the_generated_data(tmp_path):
    init_default_scope("mmseg")  # mmseg's LoadAnnotations, as in an mmseg config
    root = generate_synthetic_vessels(tmp_path, num_train=2, num_val=2, size=32)
    ds = DATASETS.build(
        dict(
            type="SyntheticVesselsDataset",
            data_root=str(root),
            data_prefix=dict(img_path="img_dir/val", seg_map_path="ann_dir/val"),
            pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")],
        )
    )
    assert isinstance(ds, SyntheticVesselsDataset) and len(ds) == 2
    assert ds.metainfo["classes"] == ("background", "vessel")
    expected = cv2.imread(str(root / "ann_dir" / "val" / "00001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ds[1]["gt_seg_map"], expected)
