"""The procedural street-scene renderer behind the built-in data (``SyntheticStreetsDataset``).

:func:`draw_street_scene` draws a road scene in perspective (sky, buildings with windows, trees,
road with lane marks, sidewalks, cars, poles with signs, people) with textures, shadows, colour
jitter and sensor noise, and its label map. Large "stuff" classes cover tens of percent of the
pixels and the "thing" classes down to about 0.1-1 % (pole, sign, person), the imbalance that
label-marginal losses are about. Colours overlap between classes (grey poles on grey facades
and roads, people and cars in any colour, grey skies), so that shape and context matter and a
small network does not reach 100 % IoU. Every random draw comes from the generator it is given.
"""

from typing import Dict, List, Mapping, Optional, Tuple

import cv2
import numpy as np

#: Class names, in label order.
CLASSES: Tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "sky",
    "vegetation",
    "car",
    "pole",
    "sign",
    "person",
)
#: RGB colours for visualisation (Cityscapes' colours of the same classes).
PALETTE: List[List[int]] = [
    [128, 64, 128],
    [244, 35, 232],
    [70, 70, 70],
    [70, 130, 180],
    [107, 142, 35],
    [0, 0, 142],
    [153, 153, 153],
    [220, 220, 0],
    [220, 20, 60],
]
ROAD, SIDEWALK, BUILDING, SKY, VEGETATION, CAR, POLE, SIGN, PERSON = range(9)

#: Default target mean pixel share of each thing class.
DEFAULT_THING_PROPORTIONS: Dict[str, float] = {
    "car": 0.05,
    "pole": 0.004,
    "person": 0.005,
    "sign": 0.002,
}
#: Cityscapes' mean pixel shares of car, person and traffic sign (poles carrying a sign add to the
#: pole share): the thing shares of the street-scene comparison in ``configs/synthetic_streets``.
CITYSCAPES_THING_PROPORTIONS: Dict[str, float] = {
    "car": 0.07,
    "pole": 0.002,
    "person": 0.012,
    "sign": 0.005,
}
#: Area in pixels of the smallest object that is drawn for each thing class.
MIN_OBJECT_AREA: Dict[str, int] = {"car": 24, "pole": 12, "person": 20, "sign": 12}
#: Things may not cover more than this share in total: stuff needs the rest.
MAX_THING_TOTAL = 0.3


def check_thing_proportions(
    thing_proportions: Optional[Mapping[str, float]], height: int, width: int
) -> Dict[str, float]:
    """The thing-class shares to draw: :data:`DEFAULT_THING_PROPORTIONS` updated by
    ``thing_proportions``.

    Args:
        thing_proportions (Mapping[str, float], optional): Target mean pixel share of some
            thing classes ('car', 'pole', 'person', 'sign').
        height (int): Image height.
        width (int): Image width.

    Returns:
        dict[str, float]: The share of every thing class.

    Raises:
        ValueError: An unknown class, a share outside (0, 1), shares that sum to more than
            :data:`MAX_THING_TOTAL`, or a share smaller than one smallest object at this size.
    """
    props = dict(DEFAULT_THING_PROPORTIONS)
    if thing_proportions is not None:
        for name, value in thing_proportions.items():
            if name not in DEFAULT_THING_PROPORTIONS:
                raise ValueError(
                    f"unknown thing class {name!r} in thing_proportions; the thing classes are "
                    f"{sorted(DEFAULT_THING_PROPORTIONS)} (stuff classes take the rest)"
                )
            value = float(value)
            if not 0.0 < value < 1.0:
                raise ValueError(f"proportion of {name!r} must be in (0, 1), got {value}")
            props[name] = value
    total = sum(props.values())
    if total > MAX_THING_TOTAL:
        raise ValueError(
            f"thing proportions {props} sum to {total:.3f} > {MAX_THING_TOTAL}: impossible, "
            "the stuff classes (road, sidewalk, building, sky, vegetation) need the rest"
        )
    for name, value in props.items():
        if value * height * width < MIN_OBJECT_AREA[name]:
            raise ValueError(
                f"proportion {value} of {name!r} is {value * height * width:.1f} px in a "
                f"{height}x{width} image, less than one smallest object "
                f"({MIN_OBJECT_AREA[name]} px): impossible at this size"
            )
    return props


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Zero-mean, unit-scale noise correlated over about ``cell`` pixels."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _jitter(rng: np.random.Generator, rgb: Tuple[float, float, float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


class _Canvas:
    """Label map and float RGB image painted together, region by region."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.rng = rng
        self.h, self.w = height, width
        self.label = np.zeros((height, width), np.uint8)
        self.img = np.zeros((height, width, 3), np.float32)
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def paint(self, mask: np.ndarray, cls: int, colour: np.ndarray) -> int:
        """Label ``mask`` as ``cls`` and colour it (``colour``: (3,) or (H, W, 3))."""
        self.label[mask] = cls
        self.img[mask] = colour if colour.ndim == 1 else colour[mask]
        return int(mask.sum())

    def textured(self, base: np.ndarray, fine: float, coarse: float, cell: int = 16) -> np.ndarray:
        """Full-frame colour field: ``base`` + coarse blotches + fine grain."""
        rng = self.rng
        field = np.broadcast_to(base, (self.h, self.w, 3)).astype(np.float32)
        blotch = _smooth_noise(rng, self.h, self.w, cell)[..., None] * coarse
        grain = rng.standard_normal((self.h, self.w, 1)).astype(np.float32) * fine
        return field + blotch + grain


def _draw_background(c: _Canvas, horizon: float) -> Tuple[float, float, float]:
    """Sky, buildings, trees, sidewalk and road; returns the road geometry."""
    rng, h, w, yy, xx = c.rng, c.h, c.w, c.yy, c.xx
    # Sky: blue or overcast grey gradient with clouds.
    overcast = rng.random() < 0.35
    top = _jitter(rng, (175, 175, 180) if overcast else (70, 125, 200), 20)
    bottom = _jitter(rng, (200, 200, 205) if overcast else (170, 200, 230), 20)
    t = (yy / max(horizon, 1.0)).clip(0, 1)[..., None]
    sky = top * (1 - t) + bottom * t + _smooth_noise(rng, h, w, 24)[..., None] * 15
    c.paint(np.ones((h, w), bool), SKY, sky)
    # Buildings: blocks of random width and height standing on the horizon.
    facades = [(120, 120, 120), (175, 155, 125), (140, 80, 60), (205, 195, 175), (95, 95, 105)]
    x = -rng.uniform(0, 0.1) * w
    while x < w:
        bw = rng.uniform(0.08, 0.3) * w
        if rng.random() < 0.1:  # gap between buildings
            x += bw * 0.5
            continue
        top_y = horizon - rng.uniform(0.35, 0.95) * horizon
        mask = (xx >= x) & (xx < x + bw) & (yy >= top_y) & (yy < horizon + 1)
        base = _jitter(rng, facades[rng.integers(len(facades))], 20)
        field = c.textured(base, fine=6, coarse=8)
        wx, wy = rng.uniform(0.025, 0.05) * w, rng.uniform(0.05, 0.1) * h
        windows = (((xx - x) % wx) < 0.55 * wx) & (((yy - top_y) % wy) < 0.5 * wy)
        dark = rng.random() < 0.6
        field[windows] = field[windows] * (0.45 if dark else 1.25)
        c.paint(mask, BUILDING, field)
        x += bw
    # Ground: sidewalk everywhere below the horizon, road as a trapezoid.
    ground = yy >= horizon
    pave = c.textured(_jitter(rng, (150, 140, 130), 25), fine=7, coarse=8)
    tile = max(4.0, 0.03 * w)
    joints = ((xx % tile) < 1) | ((yy % (tile * 0.6)) < 1)
    pave[joints] *= 0.8
    c.paint(ground, SIDEWALK, pave)
    cx = w * rng.uniform(0.35, 0.65)
    half_top = w * rng.uniform(0.02, 0.06)
    half_bottom = w * rng.uniform(0.45, 0.7)
    s = ((yy - horizon) / max(h - horizon, 1.0)).clip(0, 1)
    half = half_top + s * (half_bottom - half_top)
    road = ground & (np.abs(xx - cx) <= half)
    asphalt = c.textured(_jitter(rng, (95, 95, 100), 20), fine=8, coarse=6)
    dash = (np.abs(xx - cx) <= 0.015 * half + 0.5) & ((np.sqrt((yy - horizon).clip(0)) * 3) % 2 < 1)
    asphalt[dash] = _jitter(rng, (225, 225, 215), 15)
    c.paint(road, ROAD, asphalt)
    # Trees: green blobs along the horizon, partly in front of the buildings.
    n_trees = rng.integers(1, 6)
    for _ in range(n_trees):
        tx = rng.uniform(0, w)
        ty = horizon - rng.uniform(0.05, 0.35) * horizon
        rx, ry = rng.uniform(0.04, 0.12) * w, rng.uniform(0.08, 0.25) * h
        wobble = _smooth_noise(rng, h, w, 6) * 0.25
        blob = (((xx - tx) / rx) ** 2 + ((yy - ty) / ry) ** 2) < 1 + wobble
        blob &= yy < horizon + 0.05 * h
        leaf = c.textured(_jitter(rng, (65, 110, 45), 25), fine=22, coarse=12, cell=6)
        c.paint(blob, VEGETATION, leaf)
    if rng.random() < 0.5:  # hedge along the sidewalk
        hedge = ground & (yy < horizon + rng.uniform(0.02, 0.06) * h) & (np.abs(xx - cx) > half)
        leaf = c.textured(_jitter(rng, (70, 115, 50), 25), fine=22, coarse=12, cell=6)
        c.paint(hedge, VEGETATION, leaf)
    return cx, half_top, half_bottom


def _object_masks(
    c: _Canvas, name: str, horizon: float, road: Tuple[float, float, float]
) -> List[Tuple[float, List[Tuple[np.ndarray, int, np.ndarray]]]]:
    """One random object of class ``name``: (depth key, [(mask, class, colour)])."""
    rng, h, w, yy, xx = c.rng, c.h, c.w, c.yy, c.xx
    cx, half_top, half_bottom = road
    span = h - horizon
    # Perspective: the bottom of the object at row ``yb``; its scale grows to 1 at the bottom.
    yb = horizon + span * rng.uniform(0.08, 1.0) ** 1.2
    scale = (yb - horizon) / span
    half = half_top + scale * (half_bottom - half_top)
    parts: List[Tuple[np.ndarray, int, np.ndarray]] = []
    if name == "car":
        ch = max(3.0, scale * 0.32 * h)
        cw = ch * rng.uniform(1.3, 2.2)
        x0 = cx + rng.uniform(-1, 1) * max(half - cw / 2, 0) - cw / 2
        body = (xx >= x0) & (xx < x0 + cw) & (yy >= yb - ch) & (yy < yb)
        cabin = (xx >= x0 + 0.15 * cw) & (xx < x0 + 0.85 * cw) & (yy >= yb - 1.35 * ch)
        cabin &= yy < yb - ch
        paint = [(240, 240, 240), (30, 30, 35), (130, 130, 135), (170, 30, 30), (40, 60, 150)]
        colour = c.textured(_jitter(rng, paint[rng.integers(len(paint))], 25), fine=5, coarse=10)
        glass = (yy < yb - 0.6 * ch) & (yy >= yb - 1.3 * ch) & (xx > x0 + 0.2 * cw)
        glass &= xx < x0 + 0.8 * cw
        colour[glass] = colour[glass] * 0.35 + 20
        wheels = (yy >= yb - 0.25 * ch) & (
            (np.abs(xx - x0 - 0.2 * cw) < 0.1 * cw) | (np.abs(xx - x0 - 0.8 * cw) < 0.1 * cw)
        )
        colour[wheels] = 25
        parts.append((body | cabin, CAR, colour))
    elif name == "pole" or name == "sign":
        side = -1 if rng.random() < 0.5 else 1
        px = cx + side * (half + rng.uniform(0.02, 0.25) * w * max(scale, 0.2))
        ph = max(6.0, scale * rng.uniform(0.5, 0.9) * h)
        pw = max(2.0, scale * 0.016 * w)
        grey = _jitter(rng, (115, 115, 118), 35)
        pole = (np.abs(xx - px) < pw / 2 + 0.5) & (yy >= yb - ph) & (yy < yb)
        if name == "pole":
            parts.append((pole, POLE, c.textured(grey, fine=5, coarse=4)))
        else:
            sw = max(4.0, scale * rng.uniform(0.045, 0.07) * w)
            sy = yb - ph
            colours = [(200, 30, 30), (30, 60, 170), (230, 200, 40), (235, 235, 235), (40, 130, 60)]
            sign_colour = c.textured(_jitter(rng, colours[rng.integers(5)], 20), 6, 4)
            if rng.random() < 0.5:
                sign = (((xx - px) / (sw / 2)) ** 2 + ((yy - sy) / (sw / 2)) ** 2) < 1
            else:
                sign = (np.abs(xx - px) < sw / 2) & (np.abs(yy - sy) < sw / 2)
            parts.append((pole & ~sign, POLE, c.textured(grey, fine=5, coarse=4)))
            parts.append((sign, SIGN, sign_colour))
    elif name == "person":
        on_road = rng.random() < 0.25
        px = cx + (
            rng.uniform(-1, 1) * half
            if on_road
            else rng.choice([-1, 1]) * (half + rng.uniform(0.01, 0.2) * w * max(scale, 0.2))
        )
        ph = max(10.0, scale * rng.uniform(0.3, 0.45) * h)
        pw = ph * 0.35
        head_r = max(1.0, ph * 0.09)
        torso = (np.abs(xx - px) < pw / 2) & (yy >= yb - ph + 2 * head_r) & (yy < yb - 0.45 * ph)
        legs = (np.abs(np.abs(xx - px) - pw * 0.22) < pw * 0.16) & (yy >= yb - 0.45 * ph)
        legs &= yy < yb
        head = ((xx - px) ** 2 + (yy - (yb - ph + head_r)) ** 2) < head_r**2
        cloth = c.textured(rng.uniform(20, 235, 3).astype(np.float32), fine=8, coarse=6)
        trousers = c.textured(rng.uniform(20, 160, 3).astype(np.float32), fine=8, coarse=6)
        skin = _jitter(rng, (190, 150, 120), 40)
        colour = cloth.copy()
        colour[legs] = trousers[legs]
        colour[head] = skin
        parts.append((torso | legs | head, PERSON, colour))
    return [(yb, parts)]


def draw_street_scene(
    rng: np.random.Generator, height: int, width: int, props: Dict[str, float]
) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one street scene and its labels.

    Args:
        rng (numpy.random.Generator): The only source of randomness: the same generator state
            gives the same scene.
        height (int): Image height.
        width (int): Image width.
        props (dict[str, float]): Target mean pixel share of every thing class (from
            :func:`check_thing_proportions`); each image draws its target from 0.4 to 1.6 times
            it.

    Returns:
        tuple[np.ndarray, np.ndarray]: The RGB image, uint8 (H, W, 3), and the label map,
        uint8 (H, W) with values 0..8 in the order of :data:`CLASSES`.
    """
    c = _Canvas(rng, height, width)
    horizon = height * rng.uniform(0.38, 0.52)
    road = _draw_background(c, horizon)
    # Objects of each thing class until its target area (jittered per image) is reached.
    objects: List[Tuple[float, List[Tuple[np.ndarray, int, np.ndarray]]]] = []
    for name, share in props.items():
        target = share * height * width * rng.uniform(0.4, 1.6)
        area, tries = 0, 0
        cls = CLASSES.index(name)
        while area < target and tries < 60:
            tries += 1
            for depth, parts in _object_masks(c, name, horizon, road):
                obj_area = sum(int(m.sum()) for m, k, _ in parts if k == cls)
                # Keep the share near its target: refuse objects that overshoot it.
                if obj_area == 0 or area + obj_area > 1.3 * target:
                    continue
                area += obj_area
                objects.append((depth, parts))
    # Far objects first, so that near ones occlude them.
    for _, parts in sorted(objects, key=lambda o: o[0]):
        for mask, cls, colour in parts:
            c.paint(mask, cls, colour)
    # Cast shadows (appearance only), illumination, colour cast, blur and sensor noise.
    img = c.img
    for _ in range(rng.integers(0, 3)):
        x0 = rng.uniform(0, width)
        slope = rng.uniform(-1.5, 1.5)
        shadow = (c.xx - x0 - slope * (c.yy - horizon) > 0) & (c.yy > horizon)
        shadow &= c.xx - x0 - slope * (c.yy - horizon) < rng.uniform(0.1, 0.4) * width
        img[shadow] *= rng.uniform(0.5, 0.75)
    img = img * rng.uniform(0.7, 1.25) * rng.uniform(0.88, 1.12, 3).astype(np.float32)
    img = img + rng.uniform(-20, 20)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.9))
    img = img + rng.standard_normal(img.shape).astype(np.float32) * rng.uniform(4, 12)
    rgb = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return rgb, c.label
