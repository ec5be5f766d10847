"""Every config under ``configs/`` (``_base_`` excluded) loads, builds its model and trains.

The model of each config is built as the config says except for what a CPU test cannot have:
pretrained weights off (``pretrained=None``, backbone ``init_cfg=None``), BN instead of SyncBN
and a 32x64 input. One ``train_step`` (data preprocessor, loss, backward, SGD step) and one
``test_step`` run on a batch of two random images.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch
from config_loading import read_config
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob("*.py") if "_base_" not in p.relative_to(CONFIG_ROOT).parts
)
# Optional packages a config's custom_imports may need (the ConvNeXt config imports
# mmpretrain.models, which needs torchvision): only their absence skips a config.
OPTIONAL_MODULES = {"mmpretrain", "torchvision"}
HEIGHT, WIDTH = 32, 64


def _rel(path: Path) -> str:
    return str(path.relative_to(CONFIG_ROOT))


def _read(path: Path) -> Config:
    """The config, without importing its ``custom_imports`` (parsed once per session)."""
    return read_config(str(path))


def _load(path: Path) -> Config:
    """Load a config and import its ``custom_imports``; skip when an optional module is absent."""
    cfg = _read(path)
    imports = cfg.get("custom_imports", {}).get("imports", [])
    for module in [imports] if isinstance(imports, str) else imports:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL_MODULES:
                raise
            pytest.skip(f"{_rel(path)}: optional module {exc.name!r} not installed ({module!r})")
    return cfg


def _types(node: object) -> set[str]:
    """Every ``type`` string in a nested config."""
    found = set()
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            found.add(node["type"])
        for value in node.values():
            found |= _types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            found |= _types(value)
    return found


def _for_cpu(node: object) -> object:
    """SyncBN -> BN, no pretrained weights, anywhere in the model config."""
    if isinstance(node, dict):
        out = {k: _for_cpu(v) for k, v in node.items()}
        if out.get("type") == "SyncBN":
            out["type"] = "BN"
        if "pretrained" in out:
            out["pretrained"] = None
        if "init_cfg" in out and isinstance(out["init_cfg"], dict):
            if out["init_cfg"].get("type") == "Pretrained":
                out["init_cfg"] = None
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_for_cpu(v) for v in node)
    return node


def _num_classes(model_cfg: dict) -> int:
    head = model_cfg["decode_head"]
    head = head[-1] if isinstance(head, (list, tuple)) else head
    return int(head["num_classes"])


def _batch(num_classes: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, HEIGHT, WIDTH), generator=gen, dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, HEIGHT, WIDTH), generator=gen)
        label[:, :4] = 255  # some ignored pixels
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        shape = (HEIGHT, WIDTH)
        sample.set_metainfo(dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_configs_are_found():
    names = {p.name for p in CONFIGS}
    assert "fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py" in names
    assert len(CONFIGS) >= 22


@pytest.mark.parametrize("path", CONFIGS, ids=_rel)
def test_config_registers_plugin(path: Path):
    cfg = _read(path)
    assert cfg.get("default_scope") == "mmseg"
    imports = cfg.get("custom_imports", {}).get("imports", [])
    assert "mmseg_marginal" in ([imports] if isinstance(imports, str) else imports)
    assert cfg.custom_imports.get("allow_failed_imports") is False


# R101 models take ~5 s each on a CPU: that half runs with the slow tests
TRAIN_CASES = [pytest.param(p, marks=pytest.mark.slow) if "_r101" in p.name else p for p in CONFIGS]


@pytest.mark.parametrize("path", TRAIN_CASES, ids=_rel)
def test_config_trains_and_predicts_one_step(path: Path):
    cfg = _load(path)
    init_default_scope("mmseg")
    model_cfg = _for_cpu(cfg.model.to_dict())
    if model_cfg.get("data_preprocessor", {}).get("size") is not None:
        model_cfg["data_preprocessor"]["size"] = (HEIGHT, WIDTH)
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(model_cfg))
    num_classes = _num_classes(model_cfg)
    batch = _batch(num_classes)

    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch, optim)
    assert math.isfinite(float(log_vars["loss"])), log_vars
    changed = [n for n, p in model.named_parameters() if n in before and not p.equal(before[n])]
    assert any(n.startswith("decode_head") for n in changed)
    assert any(n.startswith("backbone") for n in changed)

    model.eval()
    with torch.no_grad():
        outputs = model.test_step(batch)
    assert len(outputs) == 2
    for out in outputs:
        pred = out.pred_sem_seg.data
        assert pred.shape == (1, HEIGHT, WIDTH)
        assert int(pred.min()) >= 0 and int(pred.max()) < num_classes
        channels = model_cfg["decode_head"].get("out_channels") or num_classes  # 1: sigmoid
        assert out.seg_logits.data.shape == (channels, HEIGHT, WIDTH)
