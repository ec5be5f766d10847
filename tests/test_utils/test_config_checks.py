"""The pre-run checks of losses, labels and data roots (``mmseg_marginal.utils.config_checks``),
in-process on small configs and generated data."""

from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image
from tiny_data import make_tiny_dataset

import mmseg_marginal  # noqa: F401
from mmseg_marginal.utils.config_checks import (
    check_data_root_override,
    check_label_values,
    check_loss_configs,
    closest_key,
    file_data_root,
    loss_sites,
    sample_indices,
)
from mmseg_marginal.utils.run_checks import RunCheckError

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "configs" / "tiny_fpn_r18.py"


def test_loss_sites_walk_every_head_list_and_nested_head():
    model = dict(
        decode_head=[
            dict(type="FCNHead", loss_decode=dict(type="CrossEntropyLoss")),
            dict(type="OCRHead", loss_decode=[dict(type="A"), dict(type="B")]),
        ],
        auxiliary_head=dict(
            type="X", kernel_generate_head=dict(type="FCNHead", loss_decode=dict(type="C"))
        ),
    )
    sites = [(s.head_path, s.path, s.index, s.count) for s in loss_sites(model)]
    assert sites == [
        ("model.decode_head[0]", "model.decode_head[0].loss_decode", None, 1),
        ("model.decode_head[1]", "model.decode_head[1].loss_decode[0]", 0, 2),
        ("model.decode_head[1]", "model.decode_head[1].loss_decode[1]", 1, 2),
        (
            "model.auxiliary_head.kernel_generate_head",
            "model.auxiliary_head.kernel_generate_head.loss_decode",
            None,
            1,
        ),
    ]


def test_closest_key_knows_the_papers_symbols_and_falls_back_to_difflib():
    keys = ["penalty", "marginal_weight", "temperature", "loss_weight", "loss_name"]
    assert closest_key("lamda", keys) == "marginal_weight"
    assert closest_key("Lambda", keys) == "marginal_weight"
    assert closest_key("tau", keys) == "temperature"
    assert closest_key("temprature", keys) == "temperature"
    assert closest_key("penalti", keys) == "penalty"
    assert closest_key("lamda", ["a_b", "loss_name"]) == "loss_name"  # no synonym there
    assert closest_key("x", []) is None


def _model(*losses, head="FCNHead", **head_keys):
    loss = list(losses) if len(losses) > 1 else losses[0]
    return Config(dict(model=dict(decode_head=dict(type=head, loss_decode=loss, **head_keys))))


def test_a_bad_value_names_the_loss_the_key_path_and_the_reason():
    cfg = _model(
        dict(type="CrossEntropyLoss"), dict(type="CEMarginalLoss", penalty="l3", temperature=2)
    )
    with pytest.raises(RunCheckError) as err:
        check_loss_configs(cfg)
    assert str(err.value) == (
        "model.decode_head.loss_decode[1].penalty='l3': CEMarginalLoss refuses it: penalty "
        "must be one of ('l1', 'kl'), got 'l3'; change model.decode_head.loss_decode[1].penalty"
    )


def test_unknown_key_of_an_mmseg_loss_is_reported_too():
    with pytest.raises(RunCheckError) as err:
        check_loss_configs(_model(dict(type="CrossEntropyLoss", loss_wieght=0.4)))
    assert str(err.value).startswith(
        "model.decode_head.loss_decode.loss_wieght: CrossEntropyLoss has no key 'loss_wieght' "
        "(closest: 'loss_weight'; accepted keys: avg_non_ignore, class_weight, loss_name, "
        "loss_weight, reduction, use_mask, use_sigmoid)"
    )


def test_well_formed_losses_pass():
    check_loss_configs(
        _model(
            dict(type="CrossEntropyLoss", avg_non_ignore=True),
            dict(type="LabelMarginalLoss", penalty="kl", temperature=10.0, loss_weight=0.1),
        )
    )
    check_loss_configs(Config(dict(model=dict(type="EncoderDecoder"))))  # no loss at all


def test_sample_indices_are_spread_and_bounded():
    assert sample_indices(0, 32) == []
    assert sample_indices(5, 32) == [0, 1, 2, 3, 4]
    picked = sample_indices(1000, 32)
    assert len(picked) == 32 and picked[0] == 0 and picked[-1] == 999
    assert all(b - a in (32, 33) for a, b in zip(picked, picked[1:]))


def _tiny_cfg(root: Path, **dataset_keys) -> Config:
    cfg = Config.fromfile(str(TINY))
    for split in ("train", "val", "test"):
        cfg[f"{split}_dataloader"].dataset.data_root = str(root)
        cfg[f"{split}_dataloader"].dataset.update(dataset_keys)
    return cfg


def _shift_labels(root: Path, by: int) -> None:
    """Add ``by`` to every training label (0..3 becomes 1..4 for by=1)."""
    for path in sorted((root / "ann_dir" / "train").glob("*.png")):
        label = np.array(Image.open(path)).astype(np.int64) + by
        Image.fromarray(label.astype(np.uint8)).save(path)


def test_label_values_one_based_labels_suggest_reduce_zero_label(tmp_path):
    root = make_tiny_dataset(tmp_path / "tiny")
    check_label_values(_tiny_cfg(root))
    _shift_labels(root, 1)
    (root / "ann_dir" / "train" / "000.png").unlink()  # 0 must occur for the hint:
    label = np.array(Image.open(root / "ann_dir" / "train" / "001.png"))
    label[:2] = 0  # ... 0 ('unlabelled') and 1..4
    Image.fromarray(label).save(root / "ann_dir" / "train" / "001.png")
    (root / "img_dir" / "train" / "000.png").unlink()
    with pytest.raises(RunCheckError) as err:
        check_label_values(_tiny_cfg(root))
    message = str(err.value)
    assert message.startswith(f"annotation {root}/ann_dir/train/001.png has label values 4 ")
    assert message.endswith("set train_dataloader.dataset.reduce_zero_label=True")
    # with reduce_zero_label, 0 becomes 255 (ignored) and 1..4 become 0..3: accepted
    check_label_values(_tiny_cfg(root, reduce_zero_label=True))


def test_label_values_ignore_index_is_the_heads(tmp_path):
    root = make_tiny_dataset(tmp_path / "tiny")
    path = root / "ann_dir" / "train" / "003.png"
    label = np.array(Image.open(path))
    label[0, 0] = 255
    Image.fromarray(label).save(path)
    cfg = _tiny_cfg(root)
    check_label_values(cfg)  # 255 is mmseg's default ignore_index
    cfg.model.decode_head.ignore_index = 100
    with pytest.raises(RunCheckError, match=r"has label values 255 outside \[0, 4\) and "):
        check_label_values(cfg)


def test_data_root_override_that_reaches_a_dataloader_passes(tmp_path):
    root = make_tiny_dataset(tmp_path / "tiny")
    cfg = _tiny_cfg(root)
    assert file_data_root(cfg) == "data/tiny"
    check_data_root_override(cfg)  # dataloaders overridden directly: nothing to report
    cfg.merge_from_dict({"data_root": str(root)})
    check_data_root_override(cfg)  # the override is what the dataloaders use
    cfg.merge_from_dict({"data_root": "/elsewhere"})
    with pytest.raises(RunCheckError, match="data_root='/elsewhere' is set at the top level"):
        check_data_root_override(cfg)
    # a config built in code has no file text: not checked
    check_data_root_override(Config(dict(data_root="/x", train_dataloader=cfg.train_dataloader)))


def test_loss_decode_outside_a_head_is_refused_naming_where_it_works():
    cfg = Config(dict(model=dict(type="EncoderDecoder", loss_decode=dict(type="CEMarginalLoss"))))
    with pytest.raises(RunCheckError) as err:
        check_loss_configs(cfg)
    assert str(err.value) == (
        "model.loss_decode is never called: EncoderDecoder is not an mmseg BaseDecodeHead and "
        "never calls a loss_decode. A marginal loss works in the loss_decode of a per-pixel "
        "head: model.decode_head or model.auxiliary_head of a segmentor such as UPerNet, "
        "SegFormer or DeepLabV3+"
    )
