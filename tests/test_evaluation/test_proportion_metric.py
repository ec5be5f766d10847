"""ProportionMetric on hand-made predictions: hand-computed values, in one and in two processes."""

from fractions import Fraction as F

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
from mmseg_marginal.evaluation import ProportionMetric

CLASSES = ("road", "car", "sky")


def make_sample(gt, pred, logits_channels=None):
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.tensor(gt, dtype=torch.uint8)[None])
    sample.pred_sem_seg = PixelData(data=torch.tensor(pred, dtype=torch.int64)[None])
    if logits_channels is not None:
        h, w = len(gt), len(gt[0])
        sample.seg_logits = PixelData(data=torch.zeros(logits_channels, h, w))
    return sample


def hand_samples():
    # image 1: 6 pixels, one void; valid GT counts (2, 2, 1); argmax on valid pixels (1, 4, 0)
    # (the prediction on the void pixel, class 2, must not be counted)
    s1 = make_sample([[0, 0, 1], [1, 2, 255]], [[0, 1, 1], [1, 1, 2]])
    # image 2: 4 pixels, all class 2; predicted counts (1, 0, 3)
    s2 = make_sample([[2, 2], [2, 2]], [[2, 2], [0, 2]])
    return [s1, s2]


# Hand-computed expectations in percent.
# valid denominator: image 1 /5, image 2 /4
GT1, PR1 = (F(2, 5), F(2, 5), F(1, 5)), (F(1, 5), F(4, 5), F(0))
GT2, PR2 = (F(0), F(0), F(1)), (F(1, 4), F(0), F(3, 4))
EXPECTED_VALID = {
    "RegProp": [F(2, 10), F(2, 10), F(6, 10)],
    "PredProp": [F(9, 40), F(4, 10), F(3, 8)],
    "PropMAE": [F(9, 40), F(2, 10), F(9, 40)],
}
# all-pixel denominator: image 1 /6 (void counted), image 2 /4
EXPECTED_ALL = {
    "RegProp": [F(1, 6), F(1, 6), F(7, 12)],
    "PredProp": [F(1, 12) + F(1, 8), F(1, 3), F(3, 8)],
    "PropMAE": [F(5, 24), F(1, 6), F(5, 24)],
}


def check(metrics, expected):
    for name, values in expected.items():
        for cls, value in zip(CLASSES, values):
            assert metrics[f"{name}.{cls}"] == pytest.approx(float(value) * 100, abs=1e-4), name
    mae = sum(expected["PropMAE"]) / 3
    assert metrics["mPropMAE"] == pytest.approx(float(mae) * 100, abs=1e-4)
    assert metrics["RegPropSum"] == pytest.approx(float(sum(expected["RegProp"])) * 100, abs=1e-4)
    assert not {"aAcc", "mIoU", "mAcc"} & set(metrics)


def run_evaluator(samples, **kwargs):
    evaluator = Evaluator(METRICS.build(dict(type="ProportionMetric", **kwargs)))
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(data_samples=samples)
    return evaluator.evaluate(len(samples))


def test_registered():
    assert METRICS.get("ProportionMetric") is ProportionMetric


@pytest.mark.parametrize(
    "denominator, expected", [("valid", EXPECTED_VALID), ("all", EXPECTED_ALL)]
)
def test_hand_computed_values(denominator, expected):
    check(run_evaluator(hand_samples(), denominator=denominator), expected)


def test_all_denominator_row_sums_to_mean_valid_share():
    metrics = run_evaluator(hand_samples(), denominator="all")
    # mean valid share (5/6 + 4/4) / 2 = 11/12, like the paper's Cityscapes row summing to 88.6%
    assert metrics["RegPropSum"] == pytest.approx(100 * 11 / 12, abs=1e-4)
    assert run_evaluator(hand_samples())["RegPropSum"] == pytest.approx(100, abs=1e-4)


def test_perfect_prediction_has_zero_error():
    gt = [[0, 1, 2], [2, 2, 255]]
    metrics = run_evaluator([make_sample(gt, [[0, 1, 2], [2, 2, 0]])])
    assert metrics["mPropMAE"] == 0
    assert metrics["PredProp.sky"] == metrics["RegProp.sky"] == pytest.approx(60)


def test_all_void_image(tmp_path):
    void = make_sample([[255, 255]], [[1, 1]])
    logger = MMLogger.get_instance("test_all_void_image", log_file=str(tmp_path / "log.txt"))
    assert MMLogger.get_current_instance() is logger
    # 'valid': no proportion, left out of the means (and said so in the log)
    check(run_evaluator(hand_samples() + [void]), EXPECTED_VALID)
    assert "1 of 3 images have no pixel" in (tmp_path / "log.txt").read_text()
    # 'all': counts as an all-zero row
    metrics = run_evaluator(hand_samples() + [void], denominator="all")
    expected = float(EXPECTED_ALL["RegProp"][2]) * 2 / 3 * 100
    assert metrics["RegProp.sky"] == pytest.approx(expected, abs=1e-4)


def test_table_is_printed(tmp_path):
    MMLogger.get_instance("test_table_is_printed", log_file=str(tmp_path / "log.txt"))
    run_evaluator(hand_samples(), classwise=False)
    text = (tmp_path / "log.txt").read_text()
    assert "| Class | RegProp | PredProp | PropMAE |" in text
    assert "|  sky  |   60.0  |   37.5   |   22.5  |" in text


def test_classwise_false_returns_summary_only():
    metrics = run_evaluator(hand_samples(), classwise=False, prefix="prop")
    assert set(metrics) == {"prop/mPropMAE", "prop/RegPropSum"}


def test_refuses_logits_with_other_class_count():
    with pytest.raises(ValueError, match="4 channels .*dataset has 3 classes"):
        run_evaluator([make_sample([[0, 1]], [[0, 1]], logits_channels=4)])


def test_binary_sigmoid_head_has_one_channel():
    # mmseg's binary heads (out_channels=1) on a 2-class dataset: accepted
    evaluator = Evaluator(METRICS.build(dict(type="ProportionMetric")))
    evaluator.dataset_meta = dict(classes=("background", "lesion"))
    evaluator.process(data_samples=[make_sample([[0, 1, 1, 0]], [[0, 1, 0, 0]], logits_channels=1)])
    metrics = evaluator.evaluate(1)
    assert metrics["RegProp.lesion"] == 50 and metrics["PredProp.lesion"] == 25
    assert metrics["mPropMAE"] == 25
    with pytest.raises(ValueError, match="1 channels .*dataset has 3 classes"):
        run_evaluator([make_sample([[0, 1]], [[0, 1]], logits_channels=1)])


def test_refuses_prediction_label_out_of_range():
    with pytest.raises(ValueError, match="label 3 but the dataset has 3 classes"):
        run_evaluator([make_sample([[0, 1]], [[0, 3]])])


def test_refuses_ground_truth_label_out_of_range():
    with pytest.raises(ValueError, match="label 11.*ignore_index=255"):
        run_evaluator([make_sample([[0, 11]], [[0, 1]])])


def test_bad_arguments():
    with pytest.raises(ValueError, match="denominator"):
        ProportionMetric(denominator="pixels")
    with pytest.raises(TypeError, match="denominater"):  # a typo is not swallowed
        ProportionMetric(denominater="all")
    metric = ProportionMetric()
    with pytest.raises(ValueError, match="dataset_meta"):
        metric.process({}, [make_sample([[0]], [[0]]).to_dict()])


def _worker(rank, world_size, init_file, out):
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        samples = hand_samples()
        results = {}
        for denominator in ("valid", "all"):
            metric = METRICS.build(dict(type="ProportionMetric", denominator=denominator))
            evaluator = Evaluator(metric)
            evaluator.dataset_meta = dict(classes=CLASSES)
            # each rank sees half of the images, like the DefaultSampler
            evaluator.process(data_samples=samples[rank::world_size])
            results[denominator] = evaluator.evaluate(len(samples))
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_processes(tmp_path):
    """Two gloo ranks with one image each give the single-process, hand-computed values."""
    out = str(tmp_path / "metrics")
    # the ranks are forked from this process: no interpreter start-up, the same code
    mp.start_processes(
        _worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True, start_method="fork"
    )
    for rank in range(2):
        results = torch.load(f"{out}.{rank}")
        check(results["valid"], EXPECTED_VALID)
        check(results["all"], EXPECTED_ALL)
