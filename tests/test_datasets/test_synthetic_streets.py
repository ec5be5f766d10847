"""The procedural street-scene generator and its dataset class."""

import hashlib
import json

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmseg_marginal.datasets import SyntheticStreetsDataset, generate_synthetic_streets
from mmseg_marginal.datasets.synthetic_streets import CLASSES


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Build pipelines in mmseg's scope whatever an earlier test left as default scope
    (``'mmseg.X'`` names fail to resolve once the default scope is already ``mmseg``)."""
    init_default_scope("mmseg")


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png"))
    }


def test_same_seed_identical_bytes_other_seed_differs(tmp_path):
    kw = dict(num_train=3, num_val=2, height=64, width=128)
    a = generate_synthetic_streets(tmp_path / "a", seed=7, **kw)
    b = generate_synthetic_streets(tmp_path / "b", seed=7, **kw)
    c = generate_synthetic_streets(tmp_path / "c", seed=8, **kw)
    da, db, dc = _digests(a), _digests(b), _digests(c)
    assert len(da) == 2 * (3 + 2)
    assert da == db
    assert (a / "meta.json").read_text() == (b / "meta.json").read_text()
    # Every image and every annotation changes with the seed.
    assert all(da[k] != dc[k] for k in da)


def test_layout_and_label_values(tmp_path):
    root = generate_synthetic_streets(tmp_path, num_train=2, num_val=1, height=64, width=128)
    for split, n in (("train", 2), ("val", 1)):
        imgs = sorted((root / "img_dir" / split).glob("*.png"))
        anns = sorted((root / "ann_dir" / split).glob("*.png"))
        assert (
            [p.name for p in imgs] == [p.name for p in anns] == [f"{i:05d}.png" for i in range(n)]
        )
        img = cv2.imread(str(imgs[0]), cv2.IMREAD_UNCHANGED)
        ann = cv2.imread(str(anns[0]), cv2.IMREAD_UNCHANGED)
        assert img.shape == (64, 128, 3) and img.dtype == np.uint8
        assert ann.shape == (64, 128) and ann.dtype == np.uint8
        assert ann.max() < len(CLASSES)


def test_class_imbalance_is_cityscapes_like(tmp_path):
    root = generate_synthetic_streets(tmp_path, num_train=16, num_val=1, seed=3)
    counts = np.zeros(len(CLASSES))
    per_image_things = []
    for p in sorted((root / "ann_dir" / "train").glob("*.png")):
        ann = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        counts += np.bincount(ann.ravel(), minlength=len(CLASSES))
        per_image_things.append(np.isin(ann, [6, 7, 8]).mean())
    share = dict(zip(CLASSES, counts / counts.sum()))
    # Large stuff classes: tens of percent each.
    for name in ("road", "building", "sky"):
        assert 0.1 <= share[name] <= 0.45, (name, share[name])
    for name in ("sidewalk", "vegetation"):
        assert 0.03 <= share[name] <= 0.3, (name, share[name])
    # Small thing classes: about 0.1-2 %, the sign the rarest.
    assert 0.03 <= share["car"] <= 0.09
    for name in ("pole", "person", "sign"):
        assert 0.0005 <= share[name] <= 0.02, (name, share[name])
    assert share["sign"] < share["person"] < share["pole"] < share["car"]
    # The stored pixel share is the one of the written annotations.
    meta = json.loads((root / "meta.json").read_text())
    for name, value in share.items():
        assert meta["train_pixel_share"][name] == pytest.approx(value, abs=1e-6)


def test_thing_proportions_are_followed(tmp_path):
    few = generate_synthetic_streets(
        tmp_path / "few",
        num_train=8,
        num_val=1,
        height=64,
        width=128,
        thing_proportions={"person": 0.0025},
    )
    many = generate_synthetic_streets(
        tmp_path / "many",
        num_train=8,
        num_val=1,
        height=64,
        width=128,
        thing_proportions={"person": 0.025},
    )
    few_share = json.loads((few / "meta.json").read_text())["train_pixel_share"]["person"]
    many_share = json.loads((many / "meta.json").read_text())["train_pixel_share"]["person"]
    assert many_share > 4 * few_share


def test_colours_overlap_between_classes(tmp_path):
    """Poles are not separable from building/road by colour alone."""
    root = generate_synthetic_streets(
        tmp_path, num_train=6, num_val=1, height=64, width=128, seed=1
    )
    pole, other = [], []
    for p in sorted((root / "ann_dir" / "train").glob("*.png")):
        ann = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        img = cv2.imread(str(root / "img_dir" / "train" / p.name)).astype(float)
        pole.append(img[ann == 6].mean(1))
        other.append(img[np.isin(ann, [0, 2])].mean(1))
    pole, other = np.concatenate(pole), np.concatenate(other)
    lo, hi = np.percentile(pole, [10, 90])
    # A large share of the road/building pixels has a brightness inside the poles' range.
    assert ((other >= lo) & (other <= hi)).mean() > 0.3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(height=16), "height must be in"),
        (dict(width=5000), "width must be in"),
        (dict(num_train=0), "num_train must be in"),
        (dict(num_val=1.5), "num_val must be an integer"),
        (dict(seed=-1), "seed must be in"),
        (dict(thing_proportions={"road": 0.3}), "unknown thing class 'road'"),
        (dict(thing_proportions={"car": 1.2}), r"proportion of 'car' must be in \(0, 1\)"),
        (dict(thing_proportions={"car": 0.25, "pole": 0.1}), r"sum to 0.35\d > 0.3"),
        (dict(height=32, width=32, thing_proportions={"sign": 0.002}), "less than one smallest"),
    ],
)
def test_bad_input_is_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_synthetic_streets(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_dataset_class_reads_the_generated_data(tmp_path):
    root = generate_synthetic_streets(tmp_path, num_train=3, num_val=2, height=64, width=128)
    ds = SyntheticStreetsDataset(
        data_root=str(root),
        data_prefix=dict(img_path="img_dir/val", seg_map_path="ann_dir/val"),
        pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")],
    )
    assert len(ds) == 2
    assert ds.metainfo["classes"] == CLASSES
    sample = ds[1]
    expected = cv2.imread(str(root / "ann_dir" / "val" / "00001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sample["gt_seg_map"], expected)


# The per-class pixel shares (%) that the README's demo section and
# results/synthetic_streets/summary.md ("GT" row) state for the built-in data: seed 0, 128x256,
# the 50 validation images of `make demo` (the generator is deterministic: exact to 0.1 %).
STATED_SHARES = {
    "road": 27.5, "sidewalk": 17.8, "building": 19.7, "sky": 17.3, "vegetation": 11.2,
    "car": 4.9, "pole": 1.0, "sign": 0.2, "person": 0.5,
}  # fmt: skip


def test_demo_data_has_the_stated_shares(tmp_path):
    """The stated shares (to 0.1 %) of the 50 validation scenes (128x256) of seed 0."""
    root = generate_synthetic_streets(tmp_path, num_train=1, num_val=50, seed=0)
    counts = np.zeros(len(CLASSES))
    for p in sorted((root / "ann_dir" / "val").glob("*.png")):
        counts += np.bincount(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).ravel(), minlength=9)
    assert counts.sum() == 50 * 128 * 256
    shares = {name: round(100 * c / counts.sum(), 1) for name, c in zip(CLASSES, counts)}
    assert shares == STATED_SHARES
