"""The family recipes of ``docs/recipes.md`` on mmseg 1.2.2's packaged configs.

KNet, DDRNet, PIDNet and STDC: the page's block for the family is written to a config file,
loaded with ``Config.fromfile`` (its ``_base_`` is a packaged config), made small by settings
that do not touch the losses (BN instead of SyncBN, no pretrained weights, 64x64 inputs), built,
and trained for one step. The marginal term must contribute: for every loss key that carries a
marginal loss, the key's value with the loss's ``marginal_weight`` minus its value with
``marginal_weight=0`` equals ``loss_weight * marginal_weight * R`` (``R`` the penalty the loss
recorded), and that difference has a finite, non-zero gradient. Mask2Former and MaskFormer, and
the mistakes the page warns about, are refused by the pre-run check (no model is built).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import nn

from mmseg_marginal.losses import CEMarginalLoss
from mmseg_marginal.utils.run_checks import RunCheckError, check_loss_types

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"
SIZE = 64
NUM_CLASSES = {"knet": 150, "ddrnet": 19, "pidnet": 19, "stdc": 19}


def recipe_block(section: str) -> str:
    """The python block of the page's section ``## <section>``."""
    text = RECIPES.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)
    assert len(blocks) == 1, f"{section}: {len(blocks)} python blocks"
    return blocks[0]


#: family -> (section, {loss key: path of the marginal loss module in the model})
FAMILIES = {
    "knet": (
        "KNet",
        {
            # the kernel generate head is called once per stage; s3 is its last call
            "decode.loss_ce_marginal.s3": "decode_head.kernel_generate_head.loss_decode",
            "aux.loss_ce_marginal": "auxiliary_head.loss_decode",
        },
    ),
    "ddrnet": (
        "DDRNet",
        {
            "decode.loss_context": "decode_head.loss_decode.0",
            "decode.loss_spatial": "decode_head.loss_decode.1",
        },
    ),
    "pidnet": (
        "PIDNet",
        {
            "decode.loss_sem_p": "decode_head.loss_decode.0",
            "decode.loss_sem_i": "decode_head.loss_decode.1",
        },
    ),
    "stdc": (
        "STDC",
        {
            "decode.loss_ce_marginal": "decode_head.loss_decode",
            "aux_0.loss_ce_marginal": "auxiliary_head.0.loss_decode",
            "aux_1.loss_ce_marginal": "auxiliary_head.1.loss_decode",
        },
    ),
}

#: the other loss keys each family must still log
OTHER_KEYS = {
    "knet": {f"decode.loss_ce_marginal.s{i}" for i in range(3)},
    "ddrnet": set(),
    "pidnet": {"decode.loss_bd", "decode.loss_sem_bd"},
    "stdc": {"aux_2.loss_ce", "aux_2.loss_dice"},
}


def _syncbn_to_bn(node: object) -> None:
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for value in node.values():
            _syncbn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _syncbn_to_bn(value)


def load_recipe(tmp_path: Path, section: str) -> Config:
    path = tmp_path / "recipe.py"
    path.write_text(recipe_block(section))
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports.imports == ["mmseg_marginal"]
    return cfg


def _batch(num_classes: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(2):
        inputs.append(torch.randint(0, 256, (3, SIZE, SIZE), generator=g, dtype=torch.uint8))
        label = torch.randint(0, 4, (1, SIZE // 8, SIZE // 8), generator=g)
        label = label.repeat_interleave(8, 1).repeat_interleave(8, 2) * (num_classes // 4)
        label[:, : 4 + 4 * i] = 255
        edge = torch.zeros_like(label)
        edge[:, 1:] |= label[:, 1:] != label[:, :-1]
        edge[:, :, 1:] |= label[:, :, 1:] != label[:, :, :-1]
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        s.gt_edge_map = PixelData(data=edge)  # PIDNet's GenerateEdge
        s.set_metainfo(dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _loss_step(model: nn.Module, data: dict) -> dict:
    torch.manual_seed(0)  # the same dropout masks in every call
    return model(**data, mode="loss")


@pytest.mark.slow  # one model build and three forward passes each: 5-30 s
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_recipe_trains_with_the_marginal_term(tmp_path, family):
    section, marginal_keys = FAMILIES[family]
    cfg = load_recipe(tmp_path, section)
    check_loss_types(cfg)  # the pre-run check accepts the recipe
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    _syncbn_to_bn(cfg.model)
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    if family == "knet":  # ResNet-18 instead of 50 (ResNetV1c stage widths 64..512); heads as stock
        cfg.model.backbone.depth = 18
        cfg.model.decode_head.kernel_generate_head.in_channels = 512
        cfg.model.auxiliary_head.in_channels = 256
    init_default_scope("mmseg")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()

    modules = {key: model.get_submodule(path) for key, path in marginal_keys.items()}
    assert all(isinstance(m, CEMarginalLoss) for m in modules.values()), modules
    all_marginal = [m for m in model.modules() if isinstance(m, CEMarginalLoss)]
    assert len(all_marginal) == len(set(map(id, modules.values())))
    for m in all_marginal:  # what MarginalStatsHook does before training
        m.enable_stats()

    data = model.data_preprocessor(_batch(NUM_CLASSES[family], seed=1), True)
    with_term = _loss_step(model, data)
    assert set(marginal_keys) | OTHER_KEYS[family] <= set(with_term), sorted(with_term)
    penalties = {key: m.last_stats.marginal.clone() for key, m in modules.items()}
    weights = {m: m.marginal_weight for m in all_marginal}
    try:
        for m in all_marginal:
            m.marginal_weight = 0.0
        without = _loss_step(model, data)
    finally:
        for m, w in weights.items():
            m.marginal_weight = w
    params = [p for p in model.parameters() if p.requires_grad]
    for key, m in modules.items():
        diff = with_term[key] - without[key]
        expected = m.loss_weight * m.marginal_weight * penalties[key]
        assert penalties[key] > 0, key
        torch.testing.assert_close(diff, expected, rtol=1e-4, atol=1e-6, msg=key)
        grads = torch.autograd.grad(diff, params, retain_graph=True, allow_unused=True)
        grads = [g for g in grads if g is not None]
        assert grads and all(bool(torch.isfinite(g).all()) for g in grads), key
        assert sum(float(g.abs().sum()) for g in grads) > 0, key

    total, _ = model.parse_losses(with_term)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)


ONE_LINE = "model = dict(decode_head=dict(loss_decode=marginal_loss))"
HEADER = (
    "custom_imports = dict(imports=['mmseg_marginal'], allow_failed_imports=False)\n"
    "marginal_loss = dict(type='CEMarginalLoss', penalty='l1', marginal_weight=1.0, "
    "temperature=10.0)\n"
)


def _refusal(tmp_path: Path, base: str, model_line: str) -> str:
    path = tmp_path / "mistake.py"
    path.write_text(f"_base_ = ['mmseg::{base}']\n{HEADER}{model_line}\n")
    with pytest.raises(RunCheckError) as err:
        check_loss_types(Config.fromfile(str(path)))
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "base, head",
    [
        ("mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py", "Mask2FormerHead"),
        ("maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py", "MaskFormerHead"),
    ],
)
def test_mask_classification_heads_refuse_a_marginal_loss(tmp_path, base, head):
    message = _refusal(tmp_path, base, ONE_LINE)
    assert message.startswith(
        f"model.decode_head.loss_decode is never called: {head} is not an mmseg BaseDecodeHead"
    )
    assert "model.decode_head or model.auxiliary_head" in message


def test_knet_decode_head_loss_names_the_kernel_generate_head(tmp_path):
    base = "knet/knet-s3_r50-d8_fcn_8xb2-adamw-80k_ade20k-512x512.py"
    message = _refusal(tmp_path, base, ONE_LINE)
    assert message.startswith("model.decode_head.loss_decode is never called: IterativeDecodeHead")
    assert message.endswith("model.decode_head.kernel_generate_head.loss_decode")


DDRNET = "ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-1024x1024.py"
PIDNET = "pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py"
#: one dict replacing the base's list (a plain dict would not merge into a list)
SINGLE_DICT = "model = dict(decode_head=dict(loss_decode=dict(marginal_loss, _delete_=True)))"


def test_ddrnet_loss_that_ignores_another_label_is_refused(tmp_path):
    line = (
        "model = dict(decode_head=dict(loss_decode=["
        "dict(type='CrossEntropyLoss', avg_non_ignore=True, loss_weight=1.0), "
        "dict(type='LabelMarginalLoss', penalty='kl', temperature=10.0, loss_weight=0.1)]))"
    )
    message = _refusal(tmp_path, DDRNET, line)
    assert message.startswith(
        "model.decode_head.loss_decode[0] (CrossEntropyLoss): DDRHead calls it without "
        "ignore_index, so it ignores label -100 while the head's ignore_index is 255"
    )
    assert message.endswith(
        "when not told: CEMarginalLoss or LabelMarginalLoss or OhemCrossEntropy with "
        "ignore_label=255"
    )


def test_ddrnet_head_ignore_index_the_marginal_loss_cannot_get_is_refused(tmp_path):
    line = (
        "model = dict(decode_head=dict(ignore_index=0, loss_decode=["
        "dict(marginal_loss, loss_weight=1.0), dict(marginal_loss, loss_weight=0.4)]))"
    )
    message = _refusal(tmp_path, DDRNET, line)
    assert "(CEMarginalLoss): DDRHead calls it without ignore_index, so it ignores label 255" in (
        message
    )
    assert message.endswith("when not told: OhemCrossEntropy with ignore_label=0")


@pytest.mark.parametrize(
    "base, model_line, expected",
    [
        (DDRNET, SINGLE_DICT, "DDRHead calls exactly 2 losses by position"),
        (PIDNET, SINGLE_DICT, "PIDHead calls exactly 4 losses by position"),
        (
            PIDNET,
            "model = dict(decode_head=dict(loss_decode=[marginal_loss, marginal_loss]))",
            "PIDHead calls exactly 4 losses by position",
        ),
        (
            PIDNET,
            "model = dict(decode_head=dict(loss_decode=[marginal_loss] * 4))",
            "PIDHead calls loss_decode[2] on its boundary logit with edge labels",
        ),
    ],
)
def test_positional_heads_refuse_lists_they_do_not_call(tmp_path, base, model_line, expected):
    assert expected in _refusal(tmp_path, base, model_line)


@pytest.mark.slow  # a Mask2Former R-50 build and one forward pass
@pytest.mark.parametrize(
    "base",
    [
        "mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py",
        "maskformer/maskformer_r50-d32_8xb2-160k_ade20k-512x512.py",
    ],
)
def test_mask_classification_heads_would_drop_the_marginal_loss_silently(tmp_path, base):
    """Why the refusal exists: with mmdet, the one-line recipe builds and trains, and the
    marginal loss is neither built nor called (the head swallows ``loss_decode``)."""
    pytest.importorskip("mmdet.models", reason="Mask2Former/MaskFormer heads need mmdet 3.x")
    path = tmp_path / "silent.py"
    path.write_text(f"_base_ = ['mmseg::{base}']\n{HEADER}{ONE_LINE}\n")
    cfg = Config.fromfile(str(path))
    assert cfg.model.decode_head.loss_decode.type == "CEMarginalLoss"
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    _syncbn_to_bn(cfg.model)
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    init_default_scope("mmseg")
    model = MODELS.build(cfg.model)
    model.train()
    assert not [m for m in model.modules() if isinstance(m, CEMarginalLoss)]
    num_classes = cfg.model.decode_head.num_classes
    losses = model(**model.data_preprocessor(_batch(num_classes, seed=1), True), mode="loss")
    assert {key.rsplit(".", 1)[-1] for key in losses} <= {"loss_cls", "loss_mask", "loss_dice"}
