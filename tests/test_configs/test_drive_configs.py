"""Binary DRIVE configs: the loss each one claims, one training and one test step, the class-count
check, the BCE they share, and a few iterations through the Runner on the real data (slow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from config_loading import read_config
from drive_data import require_drive
from mmengine.config import Config, ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from PIL import Image

import mmseg_marginal  # noqa: F401
from mmseg_marginal.datasets import class_count_mismatch
from mmseg_marginal.utils.run_checks import RunCheckError, check_data_folders

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "drive_marginal"
PREFIX = "unet-s4-c16_1xb8-1.5k_drive-fov-64x64"

_BCE = dict(
    type="CrossEntropyLoss",
    use_sigmoid=True,
    avg_non_ignore=True,
    loss_weight=1.0,
    loss_name="loss_ce",
)


def _dice(log, weight):
    return dict(type="ClasswiseDiceLoss", log=log, use_sigmoid=True, loss_weight=weight)


def _marginal(penalty, weight):
    return dict(
        type="LabelMarginalLoss",
        penalty=penalty,
        temperature=10.0,
        use_sigmoid=True,
        loss_weight=weight,
    )


# Table 2 of the paper (binary), the loss each config must resolve to (a list: mmseg's
# loss_decode list; one dict: a single loss).
EXPECTED_LOSSES = {
    "bce": _BCE,
    "dice": _dice(False, 1.0),
    "logdice": _dice(True, 1.0),
    "dice-bce": [_BCE, _dice(False, 0.1)],
    "logdice-bce": [_BCE, _dice(True, 0.1)],
    "bce-kl": [_BCE, _marginal("kl", 0.1)],
    "bce-l1": [_BCE, _marginal("l1", 1.0)],
    "focal": dict(type="SigmoidFocalLoss", gamma=2.0, loss_weight=1.0),
    "gdice": dict(type="GeneralizedDiceLoss", use_sigmoid=True, loss_weight=1.0),
    "dicebias-bce": [_BCE, dict(type="DiceBiasLoss", use_sigmoid=True, loss_weight=0.1)],
    "ce-softmax": dict(_BCE, use_sigmoid=False),
}
BINARY = sorted(set(EXPECTED_LOSSES) - {"ce-softmax"})


def _path(name: str) -> Path:
    return CONFIG_DIR / f"{PREFIX}_{name}.py"


def _types(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["type"]} if isinstance(node.get("type"), str) else set()
        for value in node.values():
            found |= _types(value)
        return found
    if isinstance(node, (list, tuple)):
        return set().union(*[_types(v) for v in node]) if node else set()
    return set()


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope("mmseg")


def test_every_config_is_listed():
    found = {p.name[len(PREFIX) + 1 : -3] for p in CONFIG_DIR.glob(f"{PREFIX}_*.py")}
    assert set(EXPECTED_LOSSES) <= found


@pytest.mark.parametrize("name", sorted(EXPECTED_LOSSES))
def test_config_resolves_to_its_loss(name):
    cfg = read_config(str(_path(name)))
    head = cfg.model.decode_head
    loss = head.loss_decode
    loss = [dict(x) for x in loss] if isinstance(loss, (list, tuple)) else dict(loss)
    assert loss == EXPECTED_LOSSES[name]
    assert head.num_classes == 2
    if name == "ce-softmax":
        assert head.out_channels == 2
    else:
        assert head.out_channels == 1 and head.threshold == 0.5
    # the same model, data and schedule for every loss
    ref = read_config(str(_path("bce")))
    for key in ("train_dataloader", "val_dataloader", "optim_wrapper", "param_scheduler"):
        assert cfg[key] == ref[key], key
    assert {k: v for k, v in cfg.model.backbone.items()} == dict(ref.model.backbone)
    assert cfg.train_cfg.max_iters == 1500 and cfg.randomness.seed == 0
    # evaluation inside the field of view, DSC/HD-95 and proportions
    ds = cfg.val_dataloader.dataset
    assert ds.type == "DRIVEFOVDataset" and ds.fov is True
    assert [t["type"] for t in ds.pipeline][-2:] == ["ApplyFOVMask", "PackSegInputs"]
    assert [m["type"] for m in cfg.val_evaluator] == ["BoundaryMetric", "ProportionMetric"]
    train_ds = cfg.train_dataloader.dataset.dataset
    assert train_ds.fov is True and train_ds.pipeline[2]["type"] == "ApplyFOVMask"


def _batch(size=(64, 64), seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8))
        label = torch.randint(0, 2, (1, *size), generator=gen)
        label[:, :, :6] = 255  # outside the field of view
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=size, ori_shape=size, pad_shape=size))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _build(name):
    cfg = read_config(str(_path(name)))
    missing = sorted(t for t in _types(cfg.model.decode_head.loss_decode) if MODELS.get(t) is None)
    assert not missing, f"{name}: {missing} not registered"
    torch.manual_seed(0)
    return MODELS.build(ConfigDict(cfg.model.to_dict()))


@pytest.mark.parametrize("name", sorted(EXPECTED_LOSSES))
def test_config_trains_one_step_and_predicts_binary(name):
    model = _build(name)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log_vars = model.train_step(_batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    assert math.isfinite(float(log_vars["loss"])), log_vars
    changed = {n.split(".")[0] for n, p in model.named_parameters() if not p.equal(before[n])}
    assert changed == {"backbone", "decode_head"}

    # whole-image inference on a size that is not a multiple of 8 (DRIVE is 584x565): padded
    # for the UNet, then cropped back
    model.eval()
    with torch.no_grad():
        outputs = model.test_step(_batch(size=(60, 67), seed=1))
    for out in outputs:
        pred = out.pred_sem_seg.data
        assert pred.shape == (1, 60, 67)
        assert set(torch.unique(pred).tolist()) <= {0, 1}
        channels = 2 if name == "ce-softmax" else 1
        assert out.seg_logits.data.shape == (channels, 60, 67)
        if channels == 1:  # mmseg: sigmoid probabilities, thresholded at 0.5
            probs = out.seg_logits.data
            assert float(probs.min()) >= 0 and float(probs.max()) <= 1
            assert torch.equal(pred, (probs > 0.5).to(pred.dtype))


def test_mmseg_bce_is_the_mean_over_valid_pixels():
    """The BCE of every binary config: mmseg's CrossEntropyLoss(use_sigmoid=True,
    avg_non_ignore=True) on one channel is the mean binary cross-entropy over the non-ignored
    pixels, and ignored pixels get no gradient."""
    loss = MODELS.build(_BCE)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 5, 7, generator=gen, requires_grad=True)
    label = torch.randint(0, 2, (2, 5, 7), generator=gen)
    label[0, :2] = 255
    label[1, :, -1] = 255
    valid = label != 255
    z, y = logits[:, 0][valid].double(), label[valid].double()
    # -[y log s(z) + (1 - y) log(1 - s(z))], written out
    reference = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).sum() / valid.sum()
    value = loss(logits, label, ignore_index=255)
    assert float(value) == pytest.approx(float(reference), rel=1e-6)  # mmseg computes in float32
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.count_nonzero(grad[:, 0][~valid]) == 0
    assert torch.all(grad[:, 0][valid] != 0)


@pytest.mark.parametrize(
    "cfg",
    [
        _dice(False, 1.0),
        _dice(True, 0.1),
        _marginal("l1", 1.0),
        _marginal("kl", 0.1),
        EXPECTED_LOSSES["gdice"],
        EXPECTED_LOSSES["dicebias-bce"][1],
        EXPECTED_LOSSES["focal"],
    ],
    ids=["dice", "logdice", "marginal-l1", "marginal-kl", "gdice", "dicebias", "focal"],
)
def test_binary_losses_refuse_bad_input(cfg):
    loss = MODELS.build(cfg)
    label = torch.zeros(2, 4, 4, dtype=torch.long)
    if cfg["type"] != "SigmoidFocalLoss":  # on K > 1 channels: the one-vs-rest focal, by design
        with pytest.raises(ValueError, match="use_sigmoid=True .* needs 1 logit channel, got 2"):
            loss(torch.zeros(2, 2, 4, 4), label)
    label[0, 0, 0] = 2
    with pytest.raises(ValueError, match=r"label value 2 is outside \[0, 2\)"):
        loss(torch.zeros(2, 1, 4, 4), label)
    label[0, 0, 0] = 255  # ignored: fine
    assert torch.isfinite(loss(torch.zeros(2, 1, 4, 4), label))


def test_binary_head_refuses_more_logits():
    cfg = read_config(str(_path("bce"))).copy()
    model_cfg = cfg.model.to_dict()
    model_cfg["decode_head"]["out_channels"] = 3
    with pytest.raises(ValueError, match="out_channels should be equal to num_classes"):
        MODELS.build(model_cfg)


def _pointed_at_drive(cfg: Config) -> Config:
    cfg = Config(cfg.to_dict())
    drive = read_config(str(_path("bce")))
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[key] = drive[key].to_dict()
    return cfg


def test_multi_class_config_on_binary_data_stops_before_training():
    camvid = Path(__file__).resolve().parents[2] / "configs" / "camvid"
    cfg = _pointed_at_drive(read_config(str(camvid / "fpn_r18-half_1xb8-8k_camvid-180x240_ce.py")))
    with pytest.raises(
        RunCheckError,
        match=r"model.decode_head has num_classes=11 but the binary dataset DRIVEFOVDataset has "
        r"2 classes \('background', 'vessel'\).*out_channels=1.*"
        r"\(train_dataloader.dataset.dataset\)",
    ):
        check_data_folders(cfg, ("train", "val"))
    # a binary config with a wrong class count, and the auxiliary heads are checked too
    model = read_config(str(_path("bce"))).model.to_dict()
    ds = dict(type="DRIVEFOVDataset")
    assert class_count_mismatch(model, ds) is None
    assert "num_classes=2, out_channels=1 but the 19-class dataset CityscapesDataset" in (
        class_count_mismatch(model, dict(type="CityscapesDataset"))
    )
    model["auxiliary_head"] = [dict(num_classes=2), dict(num_classes=3)]
    assert class_count_mismatch(model, ds).startswith("model.auxiliary_head[1] has num_classes=3")
    # a class subset chosen in metainfo is what counts; unknown types are not judged
    assert class_count_mismatch(dict(decode_head=dict(num_classes=1)), ds) is not None
    sub = dict(type="CityscapesDataset", metainfo=dict(classes=("road", "car")))
    assert class_count_mismatch(read_config(str(_path("bce"))).model.to_dict(), sub) is None
    assert class_count_mismatch(model, dict(type="NoSuchDataset")) is None


def test_stock_mmseg_drive_config_passes_the_class_check():
    import mmseg

    stock = Path(mmseg.__file__).parent / ".mim" / "configs" / "unet"
    cfg = read_config(str(stock / "unet-s5-d16_fcn_4xb4-40k_drive-64x64.py"))
    for key in ("train_dataloader", "val_dataloader"):
        loader = cfg[key]
        ds = loader.dataset.dataset if "dataset" in loader.dataset else loader.dataset
        assert class_count_mismatch(cfg.model.to_dict(), ds.to_dict()) is None


def _fov_vessel_share(root: Path, stems) -> float:
    shares = []
    for stem in stems:
        ann = np.array(Image.open(root / "annotations" / "validation" / f"{stem}_manual1.png"))
        fov = np.array(Image.open(root / "masks" / "validation" / f"{stem}_mask.png")) > 0
        shares.append(((ann == 1) & fov).sum() / fov.sum())
    return float(np.mean(shares))


@pytest.mark.drive
@pytest.mark.slow
def test_runner_trains_bce_l1_and_evaluates_dsc_hd95(tmp_path):
    """A few iterations of Ours(L1) on DRIVE through mmengine's Runner, then the validation
    loop on 3 images: DSC and HD-95 come out, scored inside the field of view."""
    from mmengine.runner import Runner

    root = require_drive()
    cfg = Config.fromfile(str(_path("bce-l1")))
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.dataset.data_root = str(root)
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.val_dataloader.dataset.update(data_root=str(root), indices=3)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=3, val_interval=3)
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.logger.interval = 1
    check_data_folders(cfg, ("train", "val"))
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert 0 <= metrics["DSC"] <= 100 and math.isfinite(metrics["DSC"])
    assert 0 <= metrics["HD95"] <= math.hypot(583, 564)
    # scored inside the field of view: the ground-truth vessel share is that of the FOV pixels
    expected = 100 * _fov_vessel_share(root, ["01_test", "02_test", "03_test"])
    assert metrics["GTShare"] == pytest.approx(expected, abs=1e-3)
    assert metrics["RegProp.vessel"] == pytest.approx(expected, abs=1e-3)
    assert metrics["PredShare"] == pytest.approx(metrics["PredProp.vessel"], abs=1e-3)
    log = next(tmp_path.glob("*/*.log")).read_text()
    assert "decode.loss_marginal" in log and "HD95" in log
