"""Through a real mmseg Runner: MarginalStatsHook scalars in the logs, ProportionMetric beside
IoUMetric in val/test evaluators, and the results table read from the resulting work dir."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from PIL import Image

import mmseg_marginal  # noqa: F401
from mmseg_marginal.analysis.results_table import collect_results, format_markdown
from mmseg_marginal.datasets import generate_synthetic_streets

KEY = "decode.loss_ce_marginal_prop_mae"
REG_KEY = "decode.loss_ce_marginal_marginal"


def tiny_config(root, work_dir):
    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations"),
        dict(type="PackSegInputs"),
    ]

    def loader(split, sampler, batch_size):
        return dict(
            batch_size=batch_size,
            num_workers=0,
            sampler=dict(type=sampler, shuffle=split == "train"),
            dataset=dict(
                type="SyntheticStreetsDataset",
                data_root=str(root),
                data_prefix=dict(img_path=f"img_dir/{split}", seg_map_path=f"ann_dir/{split}"),
                pipeline=pipeline,
            ),
        )

    norm = dict(type="BN", requires_grad=True)
    evaluator = [
        dict(type="IoUMetric", iou_metrics=["mIoU"]),
        dict(type="ProportionMetric", denominator="all"),
    ]
    return Config(
        dict(
            default_scope="mmseg",
            work_dir=str(work_dir),
            randomness=dict(seed=0),
            model=dict(
                type="EncoderDecoder",
                data_preprocessor=dict(
                    type="SegDataPreProcessor",
                    mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True,
                    size=(32, 64),
                ),
                backbone=dict(
                    type="ResNetV1c", depth=18, base_channels=8, stem_channels=8, norm_cfg=norm
                ),
                decode_head=dict(
                    type="FCNHead",
                    in_channels=64,
                    in_index=3,
                    channels=16,
                    num_convs=1,
                    concat_input=False,
                    num_classes=9,
                    dropout_ratio=0,  # a deterministic forward, repeated by PropMAERecorder
                    norm_cfg=norm,
                    loss_decode=dict(type="CEMarginalLoss", penalty="l1", marginal_weight=1.0),
                ),
                test_cfg=dict(mode="whole"),
            ),
            train_dataloader=loader("train", "InfiniteSampler", 2),
            val_dataloader=loader("val", "DefaultSampler", 1),
            test_dataloader=loader("val", "DefaultSampler", 1),
            val_evaluator=evaluator,
            test_evaluator=evaluator,
            train_cfg=dict(type="IterBasedTrainLoop", max_iters=4, val_interval=4),
            val_cfg=dict(type="ValLoop"),
            test_cfg=dict(type="TestLoop"),
            optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01)),
            default_hooks=dict(
                logger=dict(type="LoggerHook", interval=2),
                checkpoint=dict(type="CheckpointHook", interval=100),
            ),
            log_processor=dict(by_epoch=False, window_size=2),
            custom_hooks=[dict(type="MarginalStatsHook")],
        )
    )


class PropMAERecorder(Hook):
    """Before each training step, the ``prop_mae`` that the step's loss will report, computed
    on a copy of the model: decode-head logits of the batch resized to the labels (as mmseg's
    ``loss_by_feat`` does), then ``mean_b mean_k |y_bk - q_bk|`` with ``y`` the label and ``q``
    the argmax proportions over each image's non-ignored pixels."""

    priority = "HIGHEST"

    def __init__(self) -> None:
        self.values: list = []
        self.ignored_pixels = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        model = copy.deepcopy(runner.model).train()
        with torch.no_grad():
            data = model.data_preprocessor(copy.deepcopy(data_batch), True)
            logits = model.decode_head(model.extract_feat(data["inputs"]))
            labels = torch.stack([s.gt_sem_seg.data[0] for s in data["data_samples"]]).long()
            logits = F.interpolate(
                logits, labels.shape[1:], mode="bilinear",
                align_corners=model.decode_head.align_corners,
            )  # fmt: skip
            preds = logits.argmax(1)
        maes = []
        for pred, label in zip(preds, labels):
            valid = label != 255
            self.ignored_pixels += int((~valid).sum())
            y = torch.bincount(label[valid], minlength=9).double() / valid.sum()
            q = torch.bincount(pred[valid], minlength=9).double() / valid.sum()
            maes.append((y - q).abs().mean())
        self.values.append(torch.stack(maes).mean().item())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runner")
    root = generate_synthetic_streets(tmp / "data", num_train=4, num_val=2, height=64, width=128)
    # synthetic streets label every pixel: ignore a left strip of each training image, which
    # prop_mae must leave out
    for path in (root / "ann_dir" / "train").glob("*.png"):
        label = np.array(Image.open(path))
        label[:, :24] = 255
        Image.fromarray(label).save(path)
    runner = Runner.from_cfg(tiny_config(root, tmp / "work"))
    recorder = PropMAERecorder()
    runner.register_hook(recorder)
    runner.train()
    history = runner.message_hub.log_scalars
    hub = {k: history[k].data[0].tolist() for k in (f"train/{KEY}", f"train/{REG_KEY}")}
    test_metrics = runner.test()
    return dict(
        work_dir=tmp / "work", hub=hub, test_metrics=test_metrics, log_dir=runner.log_dir,
        recorded=recorder.values, ignored_pixels=recorder.ignored_pixels,
    )  # fmt: skip


def read_scalars(log_dir):
    path = Path(log_dir) / "vis_data" / "scalars.json"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_hook_scalars_reach_the_log_and_backend(trained):
    # one value per iteration in the message hub
    prop_mae = trained["hub"][f"train/{KEY}"]
    assert len(prop_mae) == 4 and trained["ignored_pixels"] == 4 * 2 * 64 * 24
    np.testing.assert_allclose(prop_mae, trained["recorded"], rtol=0, atol=1e-6)
    assert len(trained["hub"][f"train/{REG_KEY}"]) == 4
    # the LoggerHook (interval 2) averaged them over the LogProcessor's window (2) and sent the
    # means to the visualizer backend (LocalVisBackend -> scalars.json) and to the text log
    train_lines = [r for r in read_scalars(trained["log_dir"]) if "loss" in r]
    assert [r["iter"] for r in train_lines] == [2, 4]
    for row, window in zip(train_lines, (prop_mae[:2], prop_mae[2:])):
        assert row[KEY] == pytest.approx(np.mean(window), abs=1e-4)
        assert REG_KEY in row
        # beside the combined loss itself
        assert "decode.loss_ce_marginal" in row
    log = next(Path(trained["log_dir"]).glob("*.log")).read_text()
    assert f"{KEY}: " in log and f"{REG_KEY}: " in log


def test_val_and_test_metrics_have_both_key_sets(trained):
    val = [r for r in read_scalars(trained["log_dir"]) if "mIoU" in r]
    assert len(val) == 1
    for metrics in (val[0], trained["test_metrics"]):
        assert {"aAcc", "mIoU", "mAcc", "mPropMAE", "RegPropSum"} <= set(metrics)
        assert "RegProp.road" in metrics and "PropMAE.person" in metrics
        # synthetic streets have no void: the 'all' row sums to 100
        assert metrics["RegPropSum"] == pytest.approx(100, abs=1e-3)
    assert val[0]["mPropMAE"] == pytest.approx(trained["test_metrics"]["mPropMAE"], abs=1e-4)


def test_results_table_on_a_real_work_dir(trained):
    work_dir = str(trained["work_dir"])
    res = collect_results([work_dir], names=["CE+L1"])
    test = trained["test_metrics"]
    assert res["rows"][0][2] == pytest.approx(test["mIoU"], abs=0.01)
    classes = res["classes"]
    assert classes[0] == "road" and len(classes) == 9
    np.testing.assert_allclose(res["regprop"], [test[f"RegProp.{c}"] for c in classes], atol=0.006)
    lines = format_markdown(res).splitlines()
    assert lines[2].startswith("| mRegProp | ") and lines[3].startswith("| CE+L1 | ")
