"""The photometric jitter of the authors' Cityscapes pipeline: mapping, draws and statistics.

The transforms are checked three ways: exact outputs for fixed draws (hand-computed), the
distribution of the draws, and the statistics of what the transforms built from the resolved
dataset config do to a fixed image, compared with the ranges the config states
(``RandomBrightnessContrast(0.3, 0.3, p=0.5)``, hue ±20, saturation ±30, value ±20, p=0.5).
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import TRANSFORMS

import mmseg_marginal  # noqa: F401  (registers the transforms)
from mmseg_marginal.datasets.transforms import RandomBrightnessContrast, RandomHueSaturationValue

DATASET_BASE = (
    Path(__file__).resolve().parents[2] / "configs/_base_/datasets/cityscapes_marginal_512x1024.py"
)
N_DRAWS = 600


def _configured(type_name: str):
    """The transform of that type, built from the resolved Cityscapes dataset base."""
    cfg = Config.fromfile(str(DATASET_BASE), import_custom_modules=False)
    (t,) = [t for t in cfg.train_dataloader.dataset.pipeline if t["type"] == type_name]
    init_default_scope("mmseg")
    return TRANSFORMS.build(t)


def test_registered_in_mmseg_transforms_by_importing_the_package():
    assert TRANSFORMS.get("RandomBrightnessContrast") is RandomBrightnessContrast
    assert TRANSFORMS.get("RandomHueSaturationValue") is RandomHueSaturationValue


def test_brightness_contrast_mapping_by_hand(monkeypatch):
    t = RandomBrightnessContrast(prob=1.0)
    monkeypatch.setattr(t, "_draw", lambda: (1.2, -0.1))
    img = np.array([[[0, 100, 255], [50, 21, 22]]], dtype=np.uint8)
    out = t(dict(img=img.copy()))["img"]
    # 1.2 x - 25.5, clipped to [0, 255] and truncated: 0 -> 0, 100 -> 94.5, 255 -> 280.5,
    # 50 -> 34.5, 21 -> -0.3, 22 -> 0.9
    np.testing.assert_array_equal(out, [[[0, 94, 255], [34, 0, 0]]])
    assert out.dtype == np.uint8


def test_hue_saturation_value_mapping_by_hand(monkeypatch):
    t = RandomHueSaturationValue(prob=1.0)
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 2] = 200  # BGR (0, 0, 200): H = 0, S = 255, V = 200
    cases = [
        ((0.0, 0.0, 10.0), [0, 0, 210]),  # value + 10
        ((60.0, 0.0, 0.0), [0, 200, 0]),  # hue + 60 OpenCV units = 120 degrees: green
        ((10.7, 0.0, 0.0), [0, 67, 200]),  # hue truncated to 10 (20 degrees): G = 200 / 3
        ((-10.0, 0.0, 0.0), [67, 0, 200]),  # hue 0 - 10 wraps to 170 (340 degrees)
        ((0.0, -30.0, 0.0), [24, 24, 200]),  # S = 225: B = G = 200 * 30 / 255
        ((0.0, 0.0, -250.0), [0, 0, 0]),  # value clipped at 0
    ]
    for draw, expected in cases:
        monkeypatch.setattr(t, "_draw", lambda d=draw: d)
        out = t(dict(img=red.copy()))["img"]
        np.testing.assert_array_equal(out, np.broadcast_to(expected, red.shape), err_msg=draw)


def test_draws_are_uniform_in_the_stated_ranges_with_the_stated_probability():
    np.random.seed(0)
    bc = _configured("RandomBrightnessContrast")
    draws = [bc._draw() for _ in range(2000)]
    applied = np.array([d for d in draws if d is not None])
    assert abs(len(applied) / 2000 - 0.5) < 0.05
    alpha, beta = applied.T
    assert 0.7 <= alpha.min() < 0.72 and 1.28 < alpha.max() <= 1.3
    assert -0.3 <= beta.min() < -0.28 and 0.28 < beta.max() <= 0.3
    assert abs(alpha.mean() - 1) < 0.02 and abs(beta.mean()) < 0.02
    hsv = _configured("RandomHueSaturationValue")
    draws = [hsv._draw() for _ in range(2000)]
    applied = np.array([d for d in draws if d is not None])
    assert abs(len(applied) / 2000 - 0.5) < 0.05
    for col, limit in zip(applied.T, (20, 30, 20)):
        assert -limit <= col.min() < -0.95 * limit and 0.95 * limit < col.max() <= limit
        assert abs(col.mean()) < 0.06 * limit


def test_brightness_contrast_on_a_fixed_image_stays_in_the_stated_ranges():
    """Two grey patches (100 and 150) give back alpha (from their difference) and beta."""
    np.random.seed(1)
    t = _configured("RandomBrightnessContrast")
    img = np.full((4, 8, 3), 100, dtype=np.uint8)
    img[:, 4:] = 150
    alphas, betas, unchanged = [], [], 0
    for _ in range(N_DRAWS):
        out = t(dict(img=img.copy()))["img"].astype(float)
        if np.array_equal(out, img):
            unchanged += 1
            continue
        lo, hi = out[0, 0, 0], out[0, 7, 0]
        assert (out[:, :4] == lo).all() and (out[:, 4:] == hi).all()  # same map everywhere
        alphas.append((hi - lo) / 50)
        betas.append((lo - alphas[-1] * 100) / 255)
    alphas, betas = np.array(alphas), np.array(betas)
    assert abs(unchanged / N_DRAWS - 0.5) < 0.07
    # truncation moves each patch by < 1 grey level: alpha by < 1/50, beta by < 3/255
    assert alphas.min() >= 0.7 - 0.02 and alphas.max() <= 1.3 + 0.02
    assert betas.min() >= -0.3 - 0.012 and betas.max() <= 0.3 + 0.012
    assert alphas.min() < 0.75 and alphas.max() > 1.25
    assert betas.min() < -0.25 and betas.max() > 0.25


def test_hue_saturation_value_on_a_fixed_image_stays_in_the_stated_ranges():
    """A colour of mid saturation and value: its HSV shifts stay within ±20 / ±30 / ±20."""
    np.random.seed(2)
    t = _configured("RandomHueSaturationValue")
    hsv0 = np.array([[[60, 128, 128]]], dtype=np.uint8)
    img = np.ascontiguousarray(np.broadcast_to(cv2.cvtColor(hsv0, cv2.COLOR_HSV2BGR), (4, 4, 3)))
    ref = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    shifts, unchanged = [], 0
    for _ in range(N_DRAWS):
        out = t(dict(img=img.copy()))["img"]
        if np.array_equal(out, img):
            unchanged += 1
            continue
        h, s, v = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)[0, 0].astype(int) - ref
        shifts.append(((h + 90) % 180 - 90, s, v))
    shifts = np.array(shifts)
    assert abs(unchanged / N_DRAWS - 0.5) < 0.07
    for col, limit in zip(shifts.T, (20, 30, 20)):
        # 8-bit HSV -> BGR -> HSV moves a value by at most 2 levels here
        assert col.min() >= -limit - 2 and col.max() <= limit + 2
        assert col.min() < -0.8 * limit and col.max() > 0.8 * limit


def test_bad_input_and_options():
    with pytest.raises(ValueError, match="8-bit 3-channel image"):
        RandomBrightnessContrast(prob=1.0)(dict(img=np.zeros((2, 2, 3), np.float32)))
    with pytest.raises(ValueError, match="8-bit 3-channel image"):
        RandomHueSaturationValue(prob=1.0)(dict(img=np.zeros((2, 2), np.uint8)))
    with pytest.raises(ValueError, match="prob must be in"):
        RandomBrightnessContrast(prob=1.5)
    with pytest.raises(ValueError, match="contrast_limit must be in"):
        RandomBrightnessContrast(contrast_limit=1.2)
    with pytest.raises(ValueError, match="hue_shift_limit must be in"):
        RandomHueSaturationValue(hue_shift_limit=-1)
