"""mmseg_marginal.experiments.run: a run's config, its test evaluators, its result fields."""

import math
from pathlib import Path

import pytest

from mmseg_marginal.experiments import (
    build_run_config,
    comparison_evaluators,
    metrics_to_result,
    plan_runs,
)
from mmseg_marginal.experiments.run import load_config

REPO = Path(__file__).resolve().parents[2]
CAMVID = str(REPO / "configs" / "camvid" / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py")
DRIVE = str(REPO / "configs" / "drive_marginal" / "unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce.py")


def test_short_schedule_keeps_schedulers_valid(tmp_path):
    (run,) = plan_runs(["ce"], [2], 40, config=CAMVID)
    cfg = build_run_config(CAMVID, run, str(tmp_path))
    # Warm-up (0..200) is cut at 40, the poly decay (200..8000) would start after the end.
    assert [(s["type"], s["begin"], s["end"]) for s in cfg.param_scheduler] == [("LinearLR", 0, 40)]
    assert cfg.train_cfg.max_iters == 40 and cfg.randomness.seed == 2
    assert cfg.train_cfg.type == "FastResumeIterBasedTrainLoop"  # resumes skip at the sampler
    assert cfg.val_dataloader is None and cfg.work_dir == str(tmp_path)
    (long_run,) = plan_runs(["ce"], [0], 20000, config=CAMVID)
    cfg = build_run_config(CAMVID, long_run, str(tmp_path))
    assert [(s["begin"], s["end"]) for s in cfg.param_scheduler] == [(0, 200), (200, 20000)]


def test_run_config_takes_the_loss_and_head_outputs_of_the_loss(tmp_path):
    softmax, l1 = plan_runs(["ce-softmax", "bce-l1"], [0], 10, config=DRIVE)
    cfg = build_run_config(DRIVE, softmax, str(tmp_path))
    head = cfg.model.decode_head
    assert (head.out_channels, head.threshold) == (2, None)
    assert head.loss_decode.use_sigmoid is False
    cfg = build_run_config(DRIVE, l1, str(tmp_path))
    head = cfg.model.decode_head
    assert (head.out_channels, head.threshold, head.num_classes) == (1, 0.5, 2)
    assert [item["type"] for item in head.loss_decode] == ["CrossEntropyLoss", "LabelMarginalLoss"]


def test_data_root_reaches_datasets_inside_wrappers():
    """DRIVE's training set is a RepeatDataset: the leaf dataset gets the data root."""
    cfg = load_config(DRIVE, data_root="/somewhere/drive")
    assert cfg.train_dataloader.dataset.type == "RepeatDataset"
    assert cfg.train_dataloader.dataset.dataset.data_root == "/somewhere/drive"
    assert "data_root" not in cfg.train_dataloader.dataset
    assert cfg.test_dataloader.dataset.data_root == "/somewhere/drive"
    with pytest.raises(FileNotFoundError, match="config 'nope.py' does not exist"):
        load_config("nope.py")


def test_test_evaluators_report_per_class_values_and_proportions():
    cfg = load_config(CAMVID)
    assert comparison_evaluators(cfg) == [
        dict(type="ClasswiseIoUMetric", iou_metrics=["mIoU"]),
        dict(type="ProportionMetric", ignore_index=255),
    ]
    cfg = load_config(DRIVE)
    assert comparison_evaluators(cfg) == [
        dict(type="BoundaryMetric"),
        dict(type="ProportionMetric", classwise=True),
    ]
    cfg.model.decode_head.ignore_index = 7
    cfg.test_evaluator = dict(type="IoUMetric", ignore_index=7)
    assert comparison_evaluators(cfg) == [
        dict(type="ClasswiseIoUMetric", ignore_index=7),
        dict(type="ProportionMetric", ignore_index=7),
    ]


def test_metrics_to_result_multiclass():
    metrics = {
        "aAcc": 90.12,
        "mIoU": 40.0,
        "IoU.a": 60.0,
        "IoU.b": math.nan,
        "IoU.c": 20.5,
        "Acc.a": 70.0,
        "Acc.b": math.nan,
        "Acc.c": 30.0,
        "mPropMAE": 1.25,
        "RegProp.a": 50.0,
        "RegProp.b": 0.0,
        "RegProp.c": 50.0,
        "PredProp.a": 45.0,
        "PredProp.b": 0.0,
        "PredProp.c": 55.0,
        "PropMAE.a": 5.0,
        "PropMAE.b": 0.0,
        "PropMAE.c": 5.0,
    }
    out = metrics_to_result(metrics, ["a", "b", "c"])
    assert out["mIoU"] == pytest.approx(40.25)  # mean over the classes with an IoU, as mmseg
    assert out["per_class"]["IoU"] == {"a": 60.0, "b": None, "c": 20.5}
    assert out["per_class"]["PredProp"]["c"] == 55.0 and out["aAcc"] == 90.12
    assert "binary" not in out


def test_metrics_to_result_binary():
    metrics = dict(
        DSC=70.0, DSC_std=1.0, HD95=12.0, HD95_std=2.0, GTShare=12.5, PredShare=11.0,
        n_empty_pred=0, n_empty_gt=0, n_both_empty=0, mPropMAE=2.0,
        **{"RegProp.background": 87.5, "RegProp.vessel": 12.5},
    )  # fmt: skip
    images = [dict(img_path="a.png", dsc=0.7, hd95=12.0, gt_share=0.125, pred_share=0.11)]
    out = metrics_to_result(metrics, ["background", "vessel"], images)
    assert out["binary"]["DSC"] == 70.0 and out["binary"]["n_empty_pred"] == 0
    assert out["per_image"] == images and out["mIoU"] is None
    assert out["per_class"] == {"RegProp": {"background": 87.5, "vessel": 12.5}}
