"""A real mmseg Runner round trip with the Cityscapes protocol config on a mini tree.

The tiny model stands in for ResNet-50; everything else is the protocol config's: the authors'
train pipeline (512x1024 crops), CE+L1 loss, SGD with poly decay, validation with IoUMetric
and the best-mIoU checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mini_cityscapes import make_mini_cityscapes, write_tiny_config
from miou_reference import confusion_counts, miou_percent, predicted_classes
from mmengine.config import Config
from mmengine.runner import Runner
from PIL import Image

CONFIG = (
    Path(__file__).resolve().parents[2]
    / "configs/fpn_marginal/fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce-l1.py"
)


@pytest.mark.slow
def test_train_validate_and_keep_best_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the eager kernels of the loss: torch.compile of the fused CE+marginal kernels (used for
    # logits of 2^20 elements and more, as these 512x1024 crops) costs ~30 s on a CPU
    monkeypatch.setenv("MMSEG_MARGINAL_COMPILE", "0")
    root = tmp_path / "cityscapes"
    make_mini_cityscapes(root, splits=("train", "val"))
    cfg = Config.fromfile(str(write_tiny_config(tmp_path / "tiny.py", CONFIG)))
    iters = 4
    cfg.merge_from_dict(
        {
            "work_dir": str(tmp_path / "work"),
            "train_dataloader.dataset.data_root": str(root),
            "val_dataloader.dataset.data_root": str(root),
            "test_dataloader.dataset.data_root": str(root),
            "randomness.seed": 0,
            "train_cfg.max_iters": iters,
            "train_cfg.val_interval": iters,
            "default_hooks.checkpoint.interval": iters,
            "param_scheduler.0.end": iters,
        }
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    work = Path(cfg.work_dir)
    assert (work / f"iter_{iters}.pth").is_file()
    assert (work / f"best_mIoU_iter_{iters}.pth").is_file()
    (scalars,) = work.glob("*/vis_data/scalars.json")
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    assert len(train) == iters and all("decode.loss_ce_marginal" in r for r in train)
    # poly decay from 0.01 towards 1e-4 within the (shortened) schedule
    lrs = [r["lr"] for r in train]
    assert lrs[0] == pytest.approx(0.01) and all(a > b for a, b in zip(lrs, lrs[1:]))
    (val,) = [r for r in records if "mIoU" in r]
    # the logged mIoU is that of the trained model's predictions on the val images, computed
    # here from the label PNGs and a confusion matrix
    conf = val_confusion(runner.model, runner.val_dataloader)
    assert val["mIoU"] == pytest.approx(miou_percent(conf), abs=1e-5)

    # After 4 iterations the model predicts one class everywhere, so that the value above
    # checks one IoU and the count of classes present. With seeded noise (3x the weights'
    # std) added to the classifier's weights it predicts several classes (6 with these
    # seeds) and still gets part of road and building right; runner.test() (the config's
    # IoUMetric) then reports the mIoU computed here.
    head = runner.model.decode_head.conv_seg
    with torch.no_grad():
        noise = torch.randn(head.weight.shape, generator=torch.Generator().manual_seed(0))
        head.weight.add_(3 * head.weight.std() * noise)
    conf = val_confusion(runner.model, runner.val_dataloader)
    assert predicted_classes(conf) >= 2
    assert runner.test()["mIoU"] == pytest.approx(miou_percent(conf), abs=1e-5)


def val_confusion(model, dataloader) -> np.ndarray:
    """Confusion counts (19 train ids) of ``model``'s predictions on the val images against
    their ``*_gtFine_labelTrainIds.png`` read from disk."""
    model.eval()
    conf = np.zeros((19, 19), np.int64)
    with torch.no_grad():
        for batch in dataloader:
            for sample in model.val_step(batch):
                label = np.array(Image.open(sample.seg_map_path))
                conf += confusion_counts(label, sample.pred_sem_seg.data[0].numpy(), 19)
    assert conf.sum() > 0
    return conf
