"""A real mmseg Runner round trip with the Cityscapes protocol config on a mini tree.

The tiny model stands in for ResNet-50; everything else is the protocol config's: the authors'
train pipeline (512x1024 crops), CE+L1 loss, SGD with poly decay, validation with IoUMetric
and the best-mIoU checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mini_cityscapes import make_mini_cityscapes, write_tiny_config
from mmengine.config import Config
from mmengine.runner import Runner

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
    assert 0.0 <= val["mIoU"] <= 100.0
