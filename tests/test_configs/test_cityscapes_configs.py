"""The Cityscapes configs follow the paper's protocol, their names and their models.

Protocol (Liu et al., Section 3, as the authors' released code runs it): 512x1024 training
crops from the authors' pipeline, batch 8, SGD lr 0.01 momentum 0.9 weight decay 1e-4,
100 epochs = 100 * ceil(2975 / 8) iterations of poly decay (power 0.9) to 1e-4, validation
every epoch with the best-mIoU checkpoint kept, full-resolution whole-image testing with
mmseg's IoUMetric. Two model families: ``smpfpn_r{50,101}b_1xb8`` (the authors' network,
segmentation_models_pytorch 0.2.1's FPN on torchvision's ResNet, one GPU at batch 8) and
``fpn_r{50,101}_4xb2`` (mmseg's semantic FPN on ResNetV1c with SyncBN, 4 GPUs x 2).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import mmseg
import numpy as np
import pytest
from config_loading import read_config
from mini_cityscapes import ID_TO_TRAIN, make_mini_cityscapes
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS
from PIL import Image

import mmseg_marginal  # noqa: F401  (registers the pipeline's photometric transforms)

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
FPN_DIR = CONFIG_ROOT / "fpn_marginal"
MMSEG_CONFIGS = Path(mmseg.__file__).parent / ".mim" / "configs"
NAME = re.compile(
    r"(?P<model>[a-z0-9]+)_(?P<backbone>[a-z0-9-]+)_(?P<gpus>\d+)xb(?P<batch>\d+)"
    r"-(?P<kiters>\d+(?:\.\d+)?)k_(?P<dataset>[a-z]+)-(?P<h>\d+)x(?P<w>\d+)_(?P<loss>[a-z0-9-]+)"
)
CITYSCAPES_TRAIN_IMAGES = 2975
CE = dict(type="CrossEntropyLoss", loss_weight=1.0, avg_non_ignore=True, use_sigmoid=False)
# the losses of the paper's Table 4 (and GDice, DiceBiasCE) with the weights of the issue, in
# the variants of the authors' released code
AUTHORS_DICE = dict(pooling="batch", absent="zero", smooth=0.0, eps=1e-7)
LOSSES = {
    "ce": [CE],
    "focal": [dict(type="SigmoidFocalLoss", loss_weight=1.0, gamma=2.0)],
    "dice": [dict(type="ClasswiseDiceLoss", loss_weight=1.0, log=False, **AUTHORS_DICE)],
    "logdice": [dict(type="ClasswiseDiceLoss", loss_weight=1.0, log=True, **AUTHORS_DICE)],
    "dice-ce": [CE, dict(type="ClasswiseDiceLoss", loss_weight=0.1, log=False, **AUTHORS_DICE)],
    "logdice-ce": [CE, dict(type="ClasswiseDiceLoss", loss_weight=0.1, log=True, **AUTHORS_DICE)],
    "ce-kl": [
        dict(
            type="CEMarginalLoss",
            loss_weight=1.0,
            penalty="kl",
            marginal_weight=0.1,
            temperature=10.0,
            avg_non_ignore=True,
        )
    ],
    "ce-l1": [
        dict(
            type="CEMarginalLoss",
            loss_weight=1.0,
            penalty="l1",
            marginal_weight=1.0,
            temperature=10.0,
            avg_non_ignore=True,
        )
    ],
    "gdice": [dict(type="GeneralizedDiceLoss", loss_weight=1.0, pooling="batch")],
    "dicebias-ce": [CE, dict(type="DiceBiasLoss", loss_weight=0.1, class_reduction="mean")],
}
MMSEG_FPN_CONFIGS = [
    FPN_DIR / f"fpn_{bb}_4xb2-37.2k_cityscapes-512x1024_{loss}.py"
    for bb in ("r50", "r101")
    for loss in LOSSES
]
SMP_FPN_CONFIGS = [
    FPN_DIR / f"smpfpn_{bb}_1xb8-37.2k_cityscapes-512x1024_{loss}.py"
    for bb in ("r50b", "r101b")
    for loss in LOSSES
]
PROTOCOL_CONFIGS = SMP_FPN_CONFIGS + MMSEG_FPN_CONFIGS
# the ImageNet files smp 0.2.1 loads for encoder_weights='imagenet' (pretrainedmodels' URLs)
SMP_IMAGENET = {
    50: "https://download.pytorch.org/models/resnet50-19c8e357.pth",
    101: "https://download.pytorch.org/models/resnet101-5d3b4d8f.pth",
}


def _cfg(path: Path) -> Config:
    return read_config(str(path))


def _losses(cfg: Config) -> list[dict]:
    loss = cfg.model.decode_head.loss_decode
    return [dict(x) for x in (loss if isinstance(loss, (list, tuple)) else [loss])]


def _find(pipeline: list, type_name: str) -> list[dict]:
    """Transforms of a type in a pipeline, nested ``RandomChoice`` branches included."""
    found = []
    for t in pipeline:
        if isinstance(t, (list, tuple)):
            found += _find(t, type_name)
            continue
        if t["type"] == type_name:
            found.append(t)
        if "transforms" in t:
            found += _find(t["transforms"], type_name)
    return found


def test_one_config_per_loss_and_backbone():
    present = sorted(FPN_DIR.glob("fpn_r*_4xb2-37.2k_cityscapes-512x1024_*.py"))
    assert sorted(MMSEG_FPN_CONFIGS) == present
    present = sorted(FPN_DIR.glob("smpfpn_r*_1xb8-37.2k_cityscapes-512x1024_*.py"))
    assert sorted(SMP_FPN_CONFIGS) == present
    assert len(present) == 20


@pytest.mark.parametrize("path", PROTOCOL_CONFIGS, ids=lambda p: p.stem)
def test_loss_of_config_is_the_compared_loss(path: Path):
    expected = LOSSES[NAME.fullmatch(path.stem)["loss"]]
    got = _losses(_cfg(path))
    assert [x["type"] for x in got] == [x["type"] for x in expected]
    for g, e in zip(got, expected):
        for key, value in e.items():
            assert g.get(key) == value, (path.name, key, g)
    names = [x.get("loss_name") for x in got]
    assert len(names) == len(set(names)), "two losses would log under one name"


@pytest.mark.parametrize("path", PROTOCOL_CONFIGS, ids=lambda p: p.stem)
def test_config_name_matches_its_content(path: Path):
    cfg = _cfg(path)
    m = NAME.fullmatch(path.stem)
    assert m is not None, "name does not follow mmseg's convention"
    assert m["model"] in ("fpn", "smpfpn") and m["dataset"] == "cityscapes"
    assert cfg.train_dataloader.batch_size == int(m["batch"])
    assert int(m["gpus"]) * int(m["batch"]) == 8
    max_iters = cfg.train_cfg.max_iters
    assert max_iters == round(float(m["kiters"]) * 1000)
    assert max_iters == 100 * math.ceil(CITYSCAPES_TRAIN_IMAGES / 8)  # 100 epochs
    crop = (int(m["h"]), int(m["w"]))
    assert tuple(cfg.model.data_preprocessor.size) == crop
    (random_crop,) = _find(cfg.train_dataloader.dataset.pipeline, "RandomCrop")
    assert tuple(random_crop["crop_size"]) == crop
    backbone = cfg.model.backbone
    if m["model"] == "fpn":  # mmseg's naming: r50 = ResNetV1c-50
        depth = int(m["backbone"][1:])
        assert backbone.type == "ResNetV1c" and backbone.depth == depth
        assert cfg.model.pretrained == f"open-mmlab://resnet{depth}_v1c"
    else:  # mmseg's naming: r50b = ResNet-50 v1b, torchvision's layout
        assert m["backbone"][0] == "r" and m["backbone"][-1] == "b"
        depth = int(m["backbone"][1:-1])
        assert backbone.type == "ResNet" and backbone.depth == depth
        assert backbone.style == "pytorch" and not backbone.deep_stem and not backbone.avg_down
        assert cfg.model.pretrained == SMP_IMAGENET[depth]


@pytest.mark.parametrize("path", PROTOCOL_CONFIGS, ids=lambda p: p.stem)
def test_protocol(path: Path):
    cfg = _cfg(path)
    model = cfg.model
    if path.name.startswith("fpn_"):
        assert model.neck.type == "FPN" and model.decode_head.type == "FPNHead"
        assert model.backbone.norm_cfg.type == "SyncBN"
        assert model.decode_head.norm_cfg.type == "SyncBN"
    else:  # smp 0.2.1's FPN: no neck, GroupNorm decoder, Dropout2d 0.2, one GPU with BN
        head = model.decode_head
        assert model.get("neck") is None and head.type == "SMPFPNHead"
        assert model.backbone.norm_cfg.type == "BN" and head.dropout_ratio == 0.2
        assert (head.channels, head.pyramid_channels, head.num_groups) == (128, 256, 32)
        assert head.upsampling == 4 and head.align_corners is True
    assert model.decode_head.num_classes == 19 and model.test_cfg.mode == "whole"
    assert cfg.train_dataloader.dataset.type == "CityscapesDataset"
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ("SGD", 0.01, 0.9, 1e-4)
    (poly,) = cfg.param_scheduler
    assert poly.type == "PolyLR" and poly.by_epoch is False
    assert (poly.power, poly.eta_min, poly.begin, poly.end) == (0.9, 1e-4, 0, 37200)
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.save_best == "mIoU" and ckpt.rule == "greater" and ckpt.by_epoch is False
    assert 0 < cfg.train_cfg.val_interval <= ckpt.interval <= cfg.train_cfg.max_iters
    (resize,) = _find(cfg.test_dataloader.dataset.pipeline, "Resize")
    assert tuple(resize["scale"]) == (2048, 1024) and resize["keep_ratio"]
    for split in ("val", "test"):
        assert cfg[f"{split}_evaluator"].type == "IoUMetric"
        assert cfg[f"{split}_dataloader"].dataset.data_prefix.img_path == "leftImg8bit/val"


@pytest.mark.parametrize(
    "stems",
    [
        ("fpn_r50_4xb2", "fpn_r101_4xb2"),
        ("smpfpn_r50b_1xb8", "smpfpn_r101b_1xb8"),
    ],
    ids=lambda s: s[0],
)
@pytest.mark.parametrize("loss", LOSSES)
def test_r101_config_is_r50_config_with_deeper_backbone(loss: str, stems: tuple):
    r50 = _cfg(FPN_DIR / f"{stems[0]}-37.2k_cityscapes-512x1024_{loss}.py").to_dict()
    r101 = _cfg(FPN_DIR / f"{stems[1]}-37.2k_cityscapes-512x1024_{loss}.py").to_dict()
    assert (r101["model"]["backbone"]["depth"], r50["model"]["backbone"]["depth"]) == (101, 50)
    r101["model"]["backbone"]["depth"] = 50
    r101["model"]["pretrained"] = r50["model"]["pretrained"]
    assert r101 == r50


@pytest.mark.parametrize("loss", LOSSES)
def test_smp_fpn_config_is_the_mmseg_fpn_config_with_the_authors_network(loss: str):
    """The two families share data, schedule, evaluation and loss; they differ in the model
    and in the split of the batch of 8 (1 GPU x 8 vs 4 GPUs x 2)."""
    smp = _without_scope(
        _cfg(FPN_DIR / f"smpfpn_r50b_1xb8-37.2k_cityscapes-512x1024_{loss}.py").to_dict()
    )
    mmseg_fpn = _without_scope(
        _cfg(FPN_DIR / f"fpn_r50_4xb2-37.2k_cityscapes-512x1024_{loss}.py").to_dict()
    )
    assert (
        smp["model"]["decode_head"]["loss_decode"]
        == (mmseg_fpn["model"]["decode_head"]["loss_decode"])
    )
    assert smp["model"]["data_preprocessor"] == mmseg_fpn["model"]["data_preprocessor"]
    assert (smp["train_dataloader"]["batch_size"], mmseg_fpn["train_dataloader"]["batch_size"]) == (
        8,
        2,
    )
    for cfg in (smp, mmseg_fpn):
        for key in ("model", "norm_cfg", "data_preprocessor"):
            cfg.pop(key, None)
        cfg["train_dataloader"].pop("batch_size")
    assert smp == mmseg_fpn


def _parameters(path: Path) -> int:
    init_default_scope("mmseg")
    model = _cfg(path).model.to_dict()
    model["pretrained"] = None
    for key in ("backbone", "decode_head", "neck"):
        if model.get(key) and model[key].get("norm_cfg", {}).get("type") == "SyncBN":
            model[key]["norm_cfg"]["type"] = "BN"
    if model.get("neck") is None:
        model.pop("neck", None)
    return sum(p.numel() for p in MODELS.build(ConfigDict(model)).parameters())


def test_parameter_counts_of_both_families():
    """The smpfpn configs build smp 0.2.1's FPN (26,118,355 / 45,110,483 parameters for 19
    classes); the mmseg-FPN variant is mmseg's semantic FPN (28,497,907 / 47,490,035)."""
    stem = "-37.2k_cityscapes-512x1024_ce.py"
    assert _parameters(FPN_DIR / f"smpfpn_r50b_1xb8{stem}") == 26_118_355
    assert _parameters(FPN_DIR / f"smpfpn_r101b_1xb8{stem}") == 45_110_483
    assert _parameters(FPN_DIR / f"fpn_r50_4xb2{stem}") == 28_497_907
    assert _parameters(FPN_DIR / f"fpn_r101_4xb2{stem}") == 47_490_035


def _without_scope(node: object) -> object:
    """Drop the ``_scope_`` keys that mmengine adds to dicts inherited from ``mmseg::``."""
    if isinstance(node, dict):
        return {k: _without_scope(v) for k, v in node.items() if k != "_scope_"}
    if isinstance(node, (list, tuple)):
        return type(node)(_without_scope(v) for v in node)
    return node


def test_pspnet_example_changes_only_the_loss():
    ours = _cfg(CONFIG_ROOT / "pspnet_marginal/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024_ce-l1.py")
    stock = Config.fromfile(
        str(MMSEG_CONFIGS / "pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py")
    )
    ours, stock = _without_scope(ours.to_dict()), stock.to_dict()
    assert ours.pop("custom_imports")["imports"] == ["mmseg_marginal"]
    stock_loss = stock["model"]["decode_head"].pop("loss_decode")
    assert stock_loss["type"] == "CrossEntropyLoss"
    # merged into the stock CE dict: its keys stay, the type and the marginal terms change
    assert ours["model"]["decode_head"].pop("loss_decode") == dict(
        stock_loss, type="CEMarginalLoss", penalty="l1", marginal_weight=1.0, temperature=10.0
    )
    assert ours == stock


def test_mmpretrain_config_uses_a_cross_library_backbone():
    path = FPN_DIR / "fpn_convnext-t-in1k-pre_4xb2-37.2k_cityscapes-512x1024_ce-l1.py"
    cfg = _cfg(path)
    assert cfg.model.backbone.type.startswith("mmpretrain.")
    assert "mmpretrain.models" in cfg.custom_imports.imports
    assert _losses(cfg)[0]["type"] == "CEMarginalLoss"
    r50 = _cfg(FPN_DIR / "fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce-l1.py")
    assert cfg.train_dataloader.to_dict() == r50.train_dataloader.to_dict()
    assert cfg.train_cfg.max_iters == r50.train_cfg.max_iters


# ---------------------------------------------------------------- pipelines on a mini tree


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cityscapes")
    make_mini_cityscapes(root, splits=("train", "val"))
    return root


def _dataset(cfg: Config, split: str, root: Path):
    init_default_scope("mmseg")
    ds_cfg = cfg[f"{split}_dataloader"].dataset.copy()
    ds_cfg.data_root = str(root)
    return DATASETS.build(ds_cfg)


def test_train_pipeline_on_mini_cityscapes(mini_root: Path):
    """Both branches of the authors' pipeline occur and keep labels aligned with images."""
    cfg = _cfg(FPN_DIR / "fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py")
    dataset = _dataset(cfg, "train", mini_root)
    assert len(dataset) == 4
    np.random.seed(0)  # mmcv's random transforms draw from numpy's global generator
    whole, cropped = 0, 0
    for i in range(24):
        out = dataset[i % len(dataset)]
        sample = out["data_samples"]
        assert tuple(out["inputs"].shape) == (3, 512, 1024)
        label = sample.gt_sem_seg.data.numpy()[0]
        assert label.shape == (512, 1024)
        assert set(np.unique(label)) <= set(range(19)) | {255}
        sx, sy = sample.scale_factor
        assert sx == pytest.approx(sy, rel=1e-2)
        if sx == 2.0:  # 256x512 frame resized whole to 512x1024
            whole += 1
            src = np.array(Image.open(sample.seg_map_path))
            expected = src.repeat(2, axis=0).repeat(2, axis=1)
            if sample.flip:
                expected = expected[:, ::-1]
            np.testing.assert_array_equal(label, expected)
        else:  # rescaled by r in [1.5, 2.5] of 1024x2048 (x4 of the 256x512 frame), cropped
            cropped += 1
            assert 4 * 1.5 <= sx <= 4 * 2.5
    assert whole > 0 and cropped > whole


def test_test_pipeline_on_mini_cityscapes(mini_root: Path):
    """Full-resolution (1024x2048) input; the label stays at the frame's own resolution."""
    cfg = _cfg(FPN_DIR / "fpn_r50_4xb2-37.2k_cityscapes-512x1024_ce.py")
    dataset = _dataset(cfg, "val", mini_root)
    assert len(dataset) == 2
    for i in range(len(dataset)):
        out = dataset[i]
        sample = out["data_samples"]
        assert tuple(out["inputs"].shape) == (3, 1024, 2048)
        ids = np.array(Image.open(sample.seg_map_path.replace("labelTrainIds", "labelIds")))
        np.testing.assert_array_equal(sample.gt_sem_seg.data.numpy()[0], ID_TO_TRAIN[ids])
