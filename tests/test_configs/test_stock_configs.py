"""The documented loss lines merged into stock mmseg 1.2.2 configs: build, train a step, predict.

The config lines are read from the section "Any stock config" of ``docs/recipes.md`` (the
single source): for each stock config the test writes the page's ``_base_`` line (with that
config), the ``custom_imports`` line, one ``marginal_loss`` line and one ``model`` line into a
file, loads it with ``Config.fromfile``, makes the model small through
settings that do not touch the losses (BN instead of SyncBN, no pretrained weights, 64x64
inputs), builds it with mmseg's ``MODELS`` and takes one training and one inference step.
The builds are marked ``slow`` (nine models); the check that every documented line is used by a
case and every case finds its line is not.
"""

from __future__ import annotations

import ast
import os.path as osp
import re
from pathlib import Path

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import nn

from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss, StatsReporter

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"
SECTION = "## Any stock config: the loss dict and the model line"
MMSEG_CONFIGS = osp.join(osp.dirname(mmseg.__file__), ".mim", "configs")
SIZE = 64

#: Which documented ``model`` line a config needs, recognised by its text (whitespace removed).
MODEL_LINES = {
    "decode": lambda t: t == "model=dict(decode_head=dict(loss_decode=marginal_loss))",
    "aux_dict": lambda t: "auxiliary_head=dict(loss_decode=marginal_loss)" in t,
    "decode_list": lambda t: "decode_head=[" in t,
    "aux_list": lambda t: "auxiliary_head=[" in t,
    "binary": lambda t: "use_sigmoid=True" in t,
    "loss_list": lambda t: "loss_decode=[" in t,
}

#: (stock config, marginal_loss line, model line)
CASES = [
    ("pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py", "l1", "aux_dict"),
    ("deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py", "kl", "aux_dict"),
    ("sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py", "l1", "loss_list"),
    ("upernet/upernet_r18_4xb2-40k_cityscapes-512x1024.py", "kl", "aux_dict"),
    ("ocrnet/ocrnet_hr18s_4xb2-40k_cityscapes-512x1024.py", "l1", "decode_list"),
    ("segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py", "l1", "decode"),
    ("bisenetv2/bisenetv2_fcn_4xb4-ohem-160k_cityscapes-1024x1024.py", "kl", "aux_list"),
    ("unet/unet-s5-d16_fcn_4xb4-40k_drive-64x64.py", "l1", "aux_dict"),
    ("unet/unet-s5-d16_fcn_4xb4-40k_drive-64x64.py", "l1", "binary"),
]


def doc_statements() -> list[str]:
    """The top-level statements of the python blocks of the recipes page's first section."""
    text = RECIPES.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end]
    stmts = []
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
        tree = ast.parse(block)
        stmts += [ast.get_source_segment(block, node) for node in tree.body]
    return stmts


def _dict_keywords(stmt: str) -> dict:
    """``{key: value}`` of a statement ``name = dict(key=literal, ...)``."""
    call = ast.parse(stmt).body[0].value
    assert isinstance(call, ast.Call) and call.func.id == "dict", stmt
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def _squash(stmt: str) -> str:
    return re.sub(r"\s+", "", stmt)


def _assigned(stmt: str) -> str:
    return ast.parse(stmt).body[0].targets[0].id


def snippet_lines() -> dict:
    """Documented statements by role; each role must have exactly one statement."""
    roles: dict[str, list[str]] = {}
    for stmt in doc_statements():
        name = _assigned(stmt)
        if name == "marginal_loss":
            penalty = _dict_keywords(stmt)["penalty"]
            roles.setdefault(f"marginal_{penalty}", []).append(stmt)
        elif name == "model":
            kinds = [k for k, match in MODEL_LINES.items() if match(_squash(stmt))]
            assert len(kinds) == 1, f"recipes.md model line matches {kinds}: {stmt}"
            roles.setdefault(kinds[0], []).append(stmt)
        else:
            roles.setdefault(name, []).append(stmt)
    for role, stmts in roles.items():
        assert len(stmts) == 1, f"recipes.md has {len(stmts)} statements for {role}: {stmts}"
    return {role: stmts[0] for role, stmts in roles.items()}


def test_every_documented_line_is_exercised_and_the_example_base_is_tested():
    roles = snippet_lines()
    used = {"_base_", "custom_imports"}
    for _, penalty, kind in CASES:
        used |= {f"marginal_{penalty}", kind}
    assert set(roles) == used
    assert "_delete_" not in "".join(roles.values())
    doc_base = ast.literal_eval(ast.parse(roles["_base_"]).body[0].value)
    assert doc_base in [[f"mmseg::{cfg}"] for cfg, _, _ in CASES]
    assert len({cfg.split("/")[0] for cfg, _, _ in CASES}) >= 8


def _syncbn_to_bn(node: object) -> None:
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for value in node.values():
            _syncbn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _syncbn_to_bn(value)


def _heads(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(loss prefix, head)`` in mmseg's naming: decode / decode_i, aux / aux_i."""
    out = []
    for attr, prefix in (("decode_head", "decode"), ("auxiliary_head", "aux")):
        head = getattr(model, attr, None)
        if isinstance(head, nn.ModuleList):
            out += [(f"{prefix}_{i}", h) for i, h in enumerate(head)]
        elif head is not None:
            out.append((prefix, head))
    return out


def _base_heads(base: Config) -> list[dict]:
    heads = []
    for attr in ("decode_head", "auxiliary_head"):
        head = base.model.get(attr)
        heads += head if isinstance(head, list) else [head] if head else []
    return heads


def _batch(num_classes: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(2):
        inputs.append(torch.randint(0, 256, (3, SIZE, SIZE), generator=g, dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, SIZE, SIZE), generator=g)
        label[:, : 4 + 4 * i] = 255
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.slow  # nine model builds, each with a training and an inference step: ~40 s
@pytest.mark.parametrize(
    "cfg_name, penalty, kind", CASES, ids=[f"{c.split('/')[1][:-3]}-{k}" for c, _, k in CASES]
)
def test_documented_lines_build_train_and_predict_on_a_stock_config(
    tmp_path, cfg_name, penalty, kind
):
    roles = snippet_lines()
    lines = [
        f"_base_ = ['mmseg::{cfg_name}']",
        roles["custom_imports"],
        roles[f"marginal_{penalty}"],
        roles[kind],
    ]
    path = tmp_path / "marginal_config.py"
    path.write_text("\n".join(lines) + "\n")
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports.imports == ["mmseg_marginal"]
    base = Config.fromfile(osp.join(MMSEG_CONFIGS, cfg_name), import_custom_modules=False)
    marginal = _dict_keywords(roles[f"marginal_{penalty}"])
    assert marginal["type"] == "CEMarginalLoss" and marginal["penalty"] == penalty

    # small model through settings that do not touch the losses
    cfg.model.pretrained = None
    if "init_cfg" in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    _syncbn_to_bn(cfg.model)
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    init_default_scope("mmseg")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)

    heads = _heads(model)
    base_heads = _base_heads(base)
    assert len(heads) == len(base_heads) >= 1
    expected_keys = set()
    for (prefix, head), base_head in zip(heads, base_heads):
        loss = head.loss_decode
        if kind == "loss_list":
            assert [type(m) for m in loss] == [CrossEntropyLoss, LabelMarginalLoss]
            assert (loss[0].avg_non_ignore, loss[1].penalty, loss[1].loss_weight) == (
                True,
                "kl",
                0.1,
            )
            expected_keys |= {f"{prefix}.loss_ce", f"{prefix}.loss_marginal"}
            continue
        # the documented dict merged into the base's CrossEntropyLoss dict: the documented keys,
        # the base's loss_weight
        assert base_head.loss_decode.type == "CrossEntropyLoss"
        assert isinstance(loss, CEMarginalLoss), (prefix, loss)
        assert loss.penalty == marginal["penalty"]
        assert loss.marginal_weight == marginal["marginal_weight"]
        assert loss.temperature == marginal["temperature"]
        assert loss.loss_weight == base_head.loss_decode.loss_weight
        assert loss.use_sigmoid == (kind == "binary")
        assert head.out_channels == (1 if kind == "binary" else base_head.num_classes)
        expected_keys.add(f"{prefix}.loss_ce_marginal")

    # one training step
    num_classes = heads[-1][1].num_classes
    model.train()
    for m in model.modules():  # what MarginalStatsHook does before training
        if isinstance(m, StatsReporter):
            m.enable_stats()
    data = model.data_preprocessor(_batch(num_classes, seed=len(expected_keys)), True)
    losses = model(**data, mode="loss")
    assert expected_keys <= set(losses), sorted(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) > 0
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    for prefix, head in heads:
        assert head.conv_seg.weight.grad is not None, prefix
        assert head.conv_seg.weight.grad.abs().sum() > 0, prefix
        marginal_losses = [m for m in head.modules() if isinstance(m, StatsReporter)]
        assert marginal_losses and all(m.last_stats for m in marginal_losses), prefix

    # one inference step
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(_batch(num_classes, seed=1), False)
        preds = model(**data, mode="predict")
    assert len(preds) == 2
    for pred in preds:
        seg = pred.pred_sem_seg.data
        assert seg.shape == (1, SIZE, SIZE)
        assert 0 <= int(seg.min()) and int(seg.max()) < num_classes
