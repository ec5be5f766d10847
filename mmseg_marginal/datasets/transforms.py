"""Photometric jitter of the authors' released Cityscapes pipeline, as mmseg transforms.

The released training code of Liu et al. ("The hidden label-marginal biases of segmentation
losses", repository by-liu/SegLossBias) jitters colours with albumentations 1.1.0's
``RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.5)`` followed by
``HueSaturationValue()`` (hue ±20, saturation ±30, value ±20, p=0.5). mmseg's
``PhotoMetricDistortion`` cannot express it (its saturation is multiplicative, it has no value
shift, and its steps are not drawn independently with these probabilities), so the two steps
are written here from their definitions, for 8-bit images (what ``LoadImageFromFile`` gives):

* :class:`RandomBrightnessContrast`: with probability ``prob``, draw
  ``alpha ~ U[1 - c, 1 + c]`` and ``beta ~ U[-b, b]`` and map every channel value ``x`` to
  ``clip(alpha * x + 255 * beta, 0, 255)`` (brightness relative to the maximum value 255);
* :class:`RandomHueSaturationValue`: with probability ``prob``, draw ``dh ~ U[-h, h]``,
  ``ds ~ U[-s, s]``, ``dv ~ U[-v, v]``, convert to OpenCV's 8-bit HSV (hue in [0, 180)) and map
  ``H -> (H + dh) mod 180``, ``S -> clip(S + ds, 0, 255)``, ``V -> clip(V + dv, 0, 255)``,
  then convert back.

Mapped values are truncated to integers, as albumentations' 8-bit lookup tables do. Draws
use numpy's global generator, like mmcv's random transforms, so mmengine's seeding makes them
reproducible. Images are in mmcv's BGR channel order.
"""

from typing import Optional, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmseg.registry import TRANSFORMS


def _check_uint8(img: np.ndarray, name: str) -> None:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f"{name} expects an 8-bit 3-channel image (H, W, 3) uint8, got shape "
            f"{img.shape} dtype {img.dtype}; load images without to_float32"
        )


def _check_limit(name: str, value: float, owner: str, upper: Optional[float] = None) -> float:
    if not value >= 0 or (upper is not None and value > upper):
        bound = f"[0, {upper}]" if upper is not None else ">= 0"
        raise ValueError(f"{owner}: {name} must be in {bound}, got {value}")
    return float(value)


def _check_prob(prob: float, owner: str) -> float:
    if not 0 <= prob <= 1:
        raise ValueError(f"{owner}: prob must be in [0, 1], got {prob}")
    return float(prob)


@TRANSFORMS.register_module()
class RandomBrightnessContrast(BaseTransform):
    """Random linear brightness and contrast change of an 8-bit image.

    With probability ``prob``: ``x -> clip(alpha x + 255 beta, 0, 255)``, ``alpha ~ U[1 - c,
    1 + c]``, ``beta ~ U[-b, b]`` (the same for all channels), truncated to integers.

    Required keys: ``img`` (uint8 ``(H, W, 3)``). Modified keys: ``img``.

    Args:
        brightness_limit (float): ``b`` >= 0. Default: 0.3.
        contrast_limit (float): ``c`` in [0, 1]. Default: 0.3.
        prob (float): Probability of applying the change. Default: 0.5.
    """

    def __init__(
        self, brightness_limit: float = 0.3, contrast_limit: float = 0.3, prob: float = 0.5
    ) -> None:
        name = type(self).__name__
        self.brightness_limit = _check_limit("brightness_limit", brightness_limit, name)
        self.contrast_limit = _check_limit("contrast_limit", contrast_limit, name, upper=1.0)
        self.prob = _check_prob(prob, name)

    @cache_randomness
    def _draw(self) -> Optional[Tuple[float, float]]:
        if np.random.rand() >= self.prob:
            return None
        alpha = 1.0 + np.random.uniform(-self.contrast_limit, self.contrast_limit)
        beta = np.random.uniform(-self.brightness_limit, self.brightness_limit)
        return float(alpha), float(beta)

    def transform(self, results: dict) -> dict:
        img = results["img"]
        _check_uint8(img, type(self).__name__)
        draw = self._draw()
        if draw is None:
            return results
        alpha, beta = draw
        lut = np.clip(np.arange(256) * alpha + 255.0 * beta, 0, 255).astype(np.uint8)
        results["img"] = cv2.LUT(img, lut)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(brightness_limit={self.brightness_limit}, "
            f"contrast_limit={self.contrast_limit}, prob={self.prob})"
        )


@TRANSFORMS.register_module()
class RandomHueSaturationValue(BaseTransform):
    """Random additive shift of hue, saturation and value of an 8-bit BGR image.

    With probability ``prob``, in OpenCV's 8-bit HSV (hue in [0, 180)):
    ``H -> (H + dh) mod 180``, ``S -> clip(S + ds, 0, 255)``, ``V -> clip(V + dv, 0, 255)``
    with ``dh ~ U[-h, h]``, ``ds ~ U[-s, s]``, ``dv ~ U[-v, v]``, truncated to integers.

    Required keys: ``img`` (uint8 ``(H, W, 3)``, BGR). Modified keys: ``img``.

    Args:
        hue_shift_limit (float): ``h`` >= 0 (OpenCV hue units). Default: 20.
        sat_shift_limit (float): ``s`` >= 0. Default: 30.
        val_shift_limit (float): ``v`` >= 0. Default: 20.
        prob (float): Probability of applying the shift. Default: 0.5.
    """

    def __init__(
        self,
        hue_shift_limit: float = 20,
        sat_shift_limit: float = 30,
        val_shift_limit: float = 20,
        prob: float = 0.5,
    ) -> None:
        name = type(self).__name__
        self.hue_shift_limit = _check_limit("hue_shift_limit", hue_shift_limit, name)
        self.sat_shift_limit = _check_limit("sat_shift_limit", sat_shift_limit, name)
        self.val_shift_limit = _check_limit("val_shift_limit", val_shift_limit, name)
        self.prob = _check_prob(prob, name)

    @cache_randomness
    def _draw(self) -> Optional[Tuple[float, float, float]]:
        if np.random.rand() >= self.prob:
            return None
        dh = np.random.uniform(-self.hue_shift_limit, self.hue_shift_limit)
        ds = np.random.uniform(-self.sat_shift_limit, self.sat_shift_limit)
        dv = np.random.uniform(-self.val_shift_limit, self.val_shift_limit)
        return float(dh), float(ds), float(dv)

    def transform(self, results: dict) -> dict:
        img = results["img"]
        _check_uint8(img, type(self).__name__)
        draw = self._draw()
        if draw is None:
            return results
        dh, ds, dv = draw
        x = np.arange(256, dtype=np.float64)
        lut_h = np.mod(x + dh, 180).astype(np.uint8)
        lut_s = np.clip(x + ds, 0, 255).astype(np.uint8)
        lut_v = np.clip(x + dv, 0, 255).astype(np.uint8)
        h, s, v = cv2.split(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2HSV))
        hsv = cv2.merge([cv2.LUT(h, lut_h), cv2.LUT(s, lut_s), cv2.LUT(v, lut_v)])
        results["img"] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        return results

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(hue_shift_limit={self.hue_shift_limit}, "
            f"sat_shift_limit={self.sat_shift_limit}, val_shift_limit={self.val_shift_limit}, "
            f"prob={self.prob})"
        )
