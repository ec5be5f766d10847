"""Inference on the shipped configs through mmseg's own APIs, without annotations.

``mmseg.apis.inference_model`` and ``MMSegInferencer`` drop ``LoadAnnotations`` from the
config's ``test_pipeline`` and feed an image (array or file) only; every transform of our test
pipelines must then pass the sample through (``ApplyFOVMask`` has nothing to mask).

- Every config: its test pipeline as ``inference_model`` prepares it, on an array and on a
  file in DRIVE's layout (no model built).
- Every DRIVE config and one config of each other family: a model built by ``init_model``
  (random weights) predicts through ``inference_model`` and through ``MMSegInferencer``.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from drive_data import make_fake_drive
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.apis import MMSegInferencer, inference_model, init_model
from mmseg.apis.utils import _preprare_data

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob("*.py") if "_base_" not in p.relative_to(CONFIG_ROOT).parts
)
FAMILY_CASES = [p for p in CONFIGS if p.parent.name == "drive_marginal"] + [
    CONFIG_ROOT / name
    for name in (
        "camvid/fpn_r18-half_1xb8-8k_camvid-180x240_ce-l1.py",
        "demo/unet-s4-c16_1xb8-400_synthetic-vessels-64x64_bce-l1.py",
        "fpn_marginal/fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce-l1.py",
        "pspnet_marginal/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024_ce-l1.py",
        "synthetic_streets/fpn_r18-tiny_1xb8-700_synthetic-streets-128x256_ce-l1.py",
    )
]
OPTIONAL_MODULES = {"mmpretrain", "torchvision"}
H, W = 24, 40


def _rel(path: Path) -> str:
    return str(path.relative_to(CONFIG_ROOT))


def _config(path: Path) -> Config:
    cfg = Config.fromfile(str(path), import_custom_modules=False)
    imports = cfg.get("custom_imports", {}).get("imports", [])
    for module in [imports] if isinstance(imports, str) else imports:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL_MODULES:
                raise
            pytest.skip(f"{_rel(path)}: optional module {exc.name!r} not installed")
    return cfg


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def drive_image(tmp_path_factory) -> str:
    """An image file in DRIVE's layout (with its FOV mask beside it, as on disk)."""
    root = make_fake_drive(tmp_path_factory.mktemp("drive"), split="test", stems=("01_test",))
    return str(root / "images" / "test" / "01_test.png")


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_test_pipeline_runs_without_annotations(path: Path, drive_image: str):
    cfg = _config(path)
    init_default_scope("mmseg")
    # inference_model uses the top-level test_pipeline, MMSegInferencer the test dataloader's
    pipelines = [cfg.test_pipeline, cfg.test_dataloader.dataset.pipeline]
    for pipeline in pipelines:
        assert "LoadAnnotations" in [t["type"] for t in pipeline]  # dropped for inference
        for image in (_image(), drive_image):
            stand_in = SimpleNamespace(cfg=Config(dict(test_pipeline=copy.deepcopy(pipeline))))
            data, _ = _preprare_data(image, stand_in)
            sample = data["data_samples"][0]
            assert "gt_sem_seg" not in sample
            assert data["inputs"][0].shape[0] == 3
            expected = (H, W) if isinstance(image, np.ndarray) else (20, 24)
            assert tuple(sample.ori_shape) == expected


def _small_test_resize(cfg: Config) -> None:
    """The Cityscapes test pipelines resize to 2048x1024 (tens of seconds per image on a CPU
    for a ResNet-50): the same transforms at 128x64."""
    for pipeline in (cfg.test_pipeline, cfg.test_dataloader.dataset.pipeline):
        for transform in pipeline:
            if transform["type"] == "Resize" and tuple(transform["scale"]) == (2048, 1024):
                transform["scale"] = (128, 64)


@pytest.mark.slow
# random weights (no checkpoint) and no visualizer folder: the inferencer says so
@pytest.mark.filterwarnings("ignore:Checkpoint is not loaded:UserWarning")
@pytest.mark.filterwarnings("ignore:weights is None:UserWarning")
@pytest.mark.filterwarnings("ignore:Failed to add <class:UserWarning")
@pytest.mark.parametrize("path", FAMILY_CASES, ids=_rel)
def test_inference_model_and_inferencer_predict(path: Path, drive_image: str):
    cfg = _config(path)
    _small_test_resize(cfg)
    num_classes = cfg.model.decode_head.num_classes
    torch.manual_seed(0)
    model = init_model(copy.deepcopy(cfg), None, device="cpu")
    image = _image()
    result = inference_model(model, image)
    pred = result.pred_sem_seg.data
    assert pred.shape == (1, H, W)
    assert 0 <= int(pred.min()) and int(pred.max()) < num_classes

    inferencer = MMSegInferencer(model=copy.deepcopy(cfg), weights=None, device="cpu")
    inferencer.model.load_state_dict(model.state_dict())  # same weights as above
    out = inferencer(image, return_datasamples=True)
    assert torch.equal(out.pred_sem_seg.data, pred)
    from_file = inferencer(drive_image, return_datasamples=True)
    assert from_file.pred_sem_seg.data.shape[0] == 1
