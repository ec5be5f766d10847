"""BoundaryMetric: DSC and HD-95 on hand-built masks with known distances, in 1 and 2 processes."""

import json
import math
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import mmseg_marginal  # noqa: F401
from mmseg_marginal.evaluation import BoundaryMetric
from mmseg_marginal.evaluation.metrics import (
    binary_image_scores,
    dice_score,
    directed_surface_distances,
    hausdorff_distance,
)

CLASSES = ("background", "vessel")


def square(shape=(30, 30), top=5, left=5, side=10):
    mask = np.zeros(shape, bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_registered_and_exported():
    assert METRICS.get("BoundaryMetric") is BoundaryMetric
    assert mmseg_marginal.evaluation.BoundaryMetric is BoundaryMetric


@pytest.mark.parametrize("shift", [1, 2, 3, 4, 5])
def test_shifted_square_hd95_is_the_shift(shift):
    # Every surface pixel of one square has a surface pixel of the other within `shift` pixels
    # along its row (or column), and the far side (10 of 36 surface pixels) is exactly `shift`
    # away: the 95th percentile and the maximum are both `shift`.
    gt = square()
    pred = square(left=5 + shift)
    assert hausdorff_distance(pred, gt) == pytest.approx(shift, abs=1e-12)
    assert hausdorff_distance(pred, gt, percentile=100) == pytest.approx(shift, abs=1e-12)
    down = square(top=5 + shift)
    assert hausdorff_distance(down, gt) == pytest.approx(shift, abs=1e-12)
    # the far column: 10 pixels at distance `shift`
    distances = directed_surface_distances(pred, gt)
    assert len(distances) == 36 and int(np.sum(np.isclose(distances, shift))) >= 10
    assert distances.max() == pytest.approx(shift)


@pytest.mark.parametrize("shift", [1, 3])
def test_spacing_scales_each_axis(shift):
    gt = square()
    spacing = (2.0, 0.5)  # (row, column) pixel size, e.g. mm
    assert hausdorff_distance(square(left=5 + shift), gt, spacing=spacing) == pytest.approx(
        0.5 * shift
    )
    assert hausdorff_distance(square(top=5 + shift), gt, spacing=spacing) == pytest.approx(
        2.0 * shift
    )
    assert hausdorff_distance(square(left=5 + shift), gt, spacing=3.0) == pytest.approx(3 * shift)


def test_one_pixel_lines():
    gt = np.zeros((20, 20), bool)
    gt[5, 2:13] = True  # 11 pixels; a one-pixel line is its own surface
    parallel = np.zeros_like(gt)
    parallel[8, 2:13] = True
    assert np.array_equal(directed_surface_distances(parallel, gt), np.full(11, 3.0))
    assert hausdorff_distance(parallel, gt) == 3.0
    # the same line 4 pixels longer: distances from the prediction 0 (x11), 1, 2, 3, 4;
    # numpy's linear 95th percentile of 15 values sits at rank 0.95 * 14 = 13.3: 3 + 0.3 * 1
    longer = np.zeros_like(gt)
    longer[5, 2:17] = True
    distances = np.sort(directed_surface_distances(longer, gt))
    assert np.array_equal(distances, [0.0] * 11 + [1.0, 2.0, 3.0, 4.0])
    assert np.array_equal(directed_surface_distances(gt, longer), np.zeros(11))
    assert hausdorff_distance(longer, gt) == pytest.approx(3.3, abs=1e-12)
    assert hausdorff_distance(gt, longer) == pytest.approx(3.3, abs=1e-12)
    assert hausdorff_distance(longer, gt, percentile=100) == 4.0


def test_surface_is_mask_minus_erosion():
    gt = square(shape=(7, 7), top=2, left=2, side=3)  # 3x3 square: 8 surface pixels, centre not
    point = np.zeros_like(gt)
    point[3, 3] = True  # the centre pixel: 1 pixel from the 4 edge midpoints, sqrt(2) from corners
    distances = np.sort(directed_surface_distances(gt, point))
    assert np.allclose(distances, [1, 1, 1, 1] + [math.sqrt(2)] * 4)
    assert np.array_equal(directed_surface_distances(point, gt), [1.0])
    # max of the directed 95th percentiles: sqrt(2) (from the square) vs 1 (from the point)
    expected = np.percentile([1, 1, 1, 1] + [math.sqrt(2)] * 4, 95)
    assert hausdorff_distance(gt, point) == pytest.approx(expected)
    assert expected == pytest.approx(math.sqrt(2))


def test_empty_masks():
    gt = square()
    empty = np.zeros_like(gt)
    diagonal = math.hypot(29, 29)
    assert hausdorff_distance(empty, gt) == pytest.approx(diagonal)  # MONAI 1.6.1: nan
    assert hausdorff_distance(gt, empty) == pytest.approx(diagonal)  # MONAI 1.6.1: nan
    assert hausdorff_distance(empty, empty) == 0.0  # MONAI 1.6.1: nan
    assert hausdorff_distance(empty, gt, spacing=(2.0, 0.5)) == pytest.approx(
        math.hypot(29 * 2.0, 29 * 0.5)
    )
    assert dice_score(empty, gt) == 0.0
    assert dice_score(empty, empty) == 1.0


def test_dice_hand_computed():
    pred = np.array([[1, 1, 1, 0]])
    gt = np.array([[0, 1, 1, 1]])
    assert dice_score(pred, gt) == pytest.approx(2 * 2 / (3 + 3))
    assert dice_score(np.array([[1, 0, 0, 0]]), np.array([[1, 1, 1, 1]])) == pytest.approx(0.4)


def test_ignored_pixels_leave_both_masks():
    gt = np.full((30, 30), 0, np.uint8)
    gt[5:15, 5:15] = 1
    gt[:, 20:] = 255  # e.g. outside the field of view
    pred = gt.copy()
    pred[pred == 255] = 0
    pred[2:28, 22:28] = 1  # a false blob, but only on ignored pixels
    scores = binary_image_scores(pred, gt)
    assert scores["dsc"] == 1.0 and scores["hd95"] == 0.0
    assert scores["valid_pixels"] == 600 and scores["gt_pixels"] == 100
    assert scores["gt_share"] == pytest.approx(100 / 600)
    assert scores["pred_share"] == pytest.approx(100 / 600)
    # without the ignore label the blob counts: 156 extra pixels
    gt_all = np.where(gt == 255, 0, gt)
    assert binary_image_scores(pred, gt_all)["dsc"] == pytest.approx(200 / 356)


def test_different_sizes_name_both_shapes():
    with pytest.raises(ValueError, match=r"prediction has shape \(30, 31\).*\(30, 30\)"):
        hausdorff_distance(np.zeros((30, 31), bool), square())
    with pytest.raises(ValueError, match=r"prediction has shape \(2, 3\).*\(3, 2\)"):
        binary_image_scores(np.zeros((2, 3), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match=r"\(1, 4\).*\(1, 3\)"):
        run_evaluator([make_sample([[0, 1, 0]], [[0, 1, 0, 0]])])


def test_non_binary_labels():
    with pytest.raises(ValueError, match=r"binary prediction .* got \[2\]"):
        binary_image_scores(np.array([[0, 2]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match=r"ignore_index=255 only, got \[3\]"):
        binary_image_scores(np.array([[0, 1]]), np.array([[3, 255]]))
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(square(), square(), percentile=101)
    with pytest.raises(ValueError, match="spacing"):
        BoundaryMetric(spacing=(1.0, 0.0))


def make_sample(gt, pred, logits_channels=None, img_path=None, float_pred=False):
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.tensor(np.asarray(gt), dtype=torch.uint8)[None])
    dtype = torch.float32 if float_pred else torch.int64
    sample.pred_sem_seg = PixelData(data=torch.tensor(np.asarray(pred), dtype=dtype)[None])
    if logits_channels is not None:
        h, w = np.asarray(pred).shape
        sample.seg_logits = PixelData(data=torch.zeros(logits_channels, h, w))
    if img_path is not None:
        sample.set_metainfo(dict(img_path=img_path))
    return sample


def hand_samples():
    """Three images with hand-known scores (DSC, HD-95)."""
    gt1 = square().astype(np.uint8)
    pred1 = square(left=8).astype(np.uint8)  # shift 3: DSC 2*70/200 = 0.7, HD-95 3
    gt2 = square().astype(np.uint8)
    gt2[:, 25:] = 255
    pred2 = gt2.copy()
    pred2[pred2 == 255] = 1  # all wrong pixels are ignored: DSC 1, HD-95 0
    gt3 = square().astype(np.uint8)
    pred3 = np.zeros_like(gt3)  # empty prediction: DSC 0, HD-95 the diagonal
    return [
        make_sample(gt1, pred1, logits_channels=1, img_path="a.png", float_pred=True),
        make_sample(gt2, pred2, logits_channels=2, img_path="b.png"),
        make_sample(gt3, pred3, img_path="c.png"),
    ]


EXPECTED = {
    "DSC": 100 * (0.7 + 1 + 0) / 3,
    "HD95": (3 + 0 + math.hypot(29, 29)) / 3,
    "GTShare": 100 * (100 / 900 + 100 / 750 + 100 / 900) / 3,
    "PredShare": 100 * (100 / 900 + 100 / 750 + 0) / 3,
    "n_empty_pred": 1,
    "n_empty_gt": 0,
    "n_both_empty": 0,
}


def check(metrics):
    for name, value in EXPECTED.items():
        assert metrics[name] == pytest.approx(value, abs=1e-4), name
    assert metrics["DSC_std"] == pytest.approx(100 * np.std([0.7, 1, 0]), abs=1e-4)
    assert metrics["HD95_std"] == pytest.approx(np.std([3, 0, math.hypot(29, 29)]), abs=1e-4)


def run_evaluator(samples, **kwargs):
    evaluator = Evaluator(METRICS.build(dict(type="BoundaryMetric", **kwargs)))
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


def test_evaluator_hand_computed_means(tmp_path):
    logger = MMLogger.get_instance("test_boundary_means", log_file=str(tmp_path / "log.txt"))
    assert MMLogger.get_current_instance() is logger
    out = tmp_path / "per_image.json"
    check(run_evaluator(hand_samples(), per_image_file=str(out)))
    records = json.loads(out.read_text())
    assert [r["img_path"] for r in records] == ["a.png", "b.png", "c.png"]
    assert [round(r["dsc"], 10) for r in records] == [0.7, 1.0, 0.0]
    assert "1 have an empty prediction" in (tmp_path / "log.txt").read_text()


def test_spacing_and_prefix():
    metrics = run_evaluator(hand_samples()[:1], spacing=(1.0, 0.5), prefix="drive")
    assert metrics["drive/HD95"] == pytest.approx(1.5)
    assert metrics["drive/DSC"] == pytest.approx(70)


def test_refuses_multi_class_input():
    with pytest.raises(ValueError, match="seg_logits has 3 channels"):
        run_evaluator([make_sample([[0, 1]], [[0, 1]], logits_channels=3)])
    evaluator = Evaluator(METRICS.build(dict(type="BoundaryMetric")))
    evaluator.dataset_meta = dict(classes=("road", "car", "sky"))
    with pytest.raises(ValueError, match="dataset has 3 classes"):
        evaluator.process(data_samples=[make_sample([[0, 1]], [[0, 1]])])


def _worker(rank, world_size, init_file, out):
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        samples = hand_samples()
        metric = METRICS.build(dict(type="BoundaryMetric"))
        evaluator = Evaluator(metric)
        evaluator.dataset_meta = dict(classes=CLASSES)
        # rank 0 gets images 0 and 2, rank 1 image 1, like mmengine's DefaultSampler
        evaluator.process(data_samples=samples[rank::world_size])
        result = evaluator.evaluate(len(samples))
        torch.save(dict(metrics=result, per_image=metric.per_image), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path):
    """Two gloo ranks give exactly the single-process values and per-image records."""
    single = METRICS.build(dict(type="BoundaryMetric"))
    evaluator = Evaluator(single)
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=hand_samples())
    one = evaluator.evaluate(3)
    check(one)

    out = str(tmp_path / "metrics")
    # the ranks are forked from this process: no interpreter start-up, the same code
    context = mp.start_processes(
        _worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=False, start_method="fork"
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two evaluation processes did not finish within 120 s")
    for rank in range(2):
        saved = torch.load(f"{out}.{rank}")
        assert saved["metrics"] == one
    # the records are gathered in sampler order (image 0, 1, 2) on rank 0
    records = torch.load(f"{out}.0")["per_image"]
    assert [r["img_path"] for r in records] == ["a.png", "b.png", "c.png"]
    assert records == single.per_image
