"""Pre-run checks of a config's losses, labels and data root, before any model is built.

Each check raises one :class:`~mmseg_marginal.utils.run_checks.RunCheckError` whose message is
one line naming the config key and the fix. They are called by the entry points of
:mod:`mmseg_marginal.utils.run_checks` that ``tools/train.py`` and ``tools/test.py`` run:

* :func:`check_loss_configs`: every ``loss_decode`` entry of the model (every head, auxiliary
  head, nested head and list entry) builds on its own; an unknown key is reported with the
  accepted keys and the closest one, a bad value with the loss and its config path
  (``model.decode_head.loss_decode[1].temperature``). A ``loss_decode`` where the model never
  calls it (KNet's ``IterativeDecodeHead``, the mask-classification heads of Mask2Former and
  MaskFormer), a loss list of the wrong length for DDRNet's and PIDNet's heads, and a loss that
  those heads call without ``ignore_index`` while it ignores another label are refused.
* :func:`check_data_root_override`: a top-level ``data_root`` changed after the config file was
  read (``--cfg-options data_root=...``) that no dataloader uses.
* :func:`check_label_values`: the annotations of a sample of training images, as
  ``LoadAnnotations`` reads them (``reduce_zero_label`` and ``label_map`` applied), hold only
  values in ``[0, num_classes)`` and ``ignore_index``.
"""

from __future__ import annotations

import difflib
import inspect
import os.path as osp
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: mmseg's default ``ignore_index`` of a decode head.
DEFAULT_IGNORE_INDEX = 255
#: How many training annotations :func:`check_label_values` reads per dataset, at most.
LABEL_SAMPLES = 32


def _error(message: str) -> Exception:
    from .run_checks import RunCheckError

    return RunCheckError(message)


@dataclass
class LossSite:
    """One ``loss_decode`` entry of a model config and the head that holds it."""

    head_path: str  #: config path of the head (``model.decode_head``)
    head_cfg: dict  #: the head's config
    path: str  #: config path of the entry (``model.decode_head.loss_decode[1]``)
    cfg: Any  #: the entry's config
    index: int | None  #: position in the list, None for a single dict
    count: int  #: number of entries of the head's ``loss_decode`` (1 for a dict)


def loss_sites(model_cfg: Any, where: str = "model") -> Iterator[LossSite]:
    """Every ``loss_decode`` entry of a model config, with its head, depth first."""
    if isinstance(model_cfg, dict):
        for key, value in model_cfg.items():
            path = f"{where}.{key}"
            if key == "loss_decode":
                if isinstance(value, (list, tuple)):
                    for i, entry in enumerate(value):
                        yield LossSite(where, model_cfg, f"{path}[{i}]", entry, i, len(value))
                else:
                    yield LossSite(where, model_cfg, path, value, None, 1)
            else:
                yield from loss_sites(value, path)
    elif isinstance(model_cfg, (list, tuple)):
        for i, value in enumerate(model_cfg):
            yield from loss_sites(value, f"{where}[{i}]")


def _registered(name: Any) -> type | None:
    from mmseg.registry import MODELS

    if isinstance(name, type):
        return name
    return MODELS.get(name) if isinstance(name, str) else None


def _is_marginal(cls: type | None) -> bool:
    return cls is not None and cls.__module__.startswith("mmseg_marginal.")


def _params(fn: Any) -> tuple[dict, bool]:
    """(named parameters of ``fn`` without ``self``, whether it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}, True
    named = {
        name: p
        for name, p in sig.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    return named, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


# --- where a loss_decode is called ---------------------------------------------------------

#: Heads of mmseg 1.2.2 that call ``loss_decode[i]`` by position (``loss_by_feat``):
#: ``name -> [(loss key, branch, passes ignore_index, per-class labels)]``.
_POSITIONAL_HEADS: dict[str, list[tuple[str, str, bool, bool]]] = {
    "DDRHead": [
        ("loss_context", "context branch", False, True),
        ("loss_spatial", "spatial branch", False, True),
    ],
    "PIDHead": [
        ("loss_sem_p", "P branch", True, True),
        ("loss_sem_i", "I branch (the prediction)", False, True),
        ("loss_bd", "boundary logit with edge labels", False, False),
        ("loss_sem_bd", "I branch on boundary pixels", False, True),
    ],
}


def _positional_calls(head_cls: type) -> tuple[str, list] | None:
    from mmseg.registry import MODELS

    for name, calls in _POSITIONAL_HEADS.items():
        cls = MODELS.get(name)
        if cls is not None and issubclass(head_cls, cls):
            return name, calls
    return None


def _never_calls_loss_decode(head_cls: type, head_path: str) -> str | None:
    """Why ``head_cls`` never calls a ``loss_decode`` (and where a loss works); None if it does."""
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    from mmseg.models.decode_heads.knet_head import IterativeDecodeHead

    if issubclass(head_cls, IterativeDecodeHead):
        return (
            "IterativeDecodeHead (KNet) takes no loss_decode: it computes its loss with its "
            "kernel_generate_head on every stage's prediction. Put the loss at "
            f"{head_path}.kernel_generate_head.loss_decode"
        )
    named, _ = _params(head_cls.__init__)
    if issubclass(head_cls, BaseDecodeHead) or "loss_decode" in named:
        return None
    why = ""
    if "MaskFormer" in head_cls.__name__ or "Mask2Former" in head_cls.__name__:
        why = (
            " (Mask2Former and MaskFormer heads train with loss_cls/loss_mask/loss_dice on "
            "mask queries and compute no per-pixel class-score loss)"
        )
    return (
        f"{head_cls.__name__} is not an mmseg BaseDecodeHead and never calls a loss_decode{why}. "
        "A marginal loss works in the loss_decode of a per-pixel head: model.decode_head or "
        "model.auxiliary_head of a segmentor such as UPerNet, SegFormer or DeepLabV3+"
    )


_UNKNOWN = object()


def _forward_ignore_index(loss_cls: type, loss_cfg: dict) -> Any:
    """The label a loss ignores when its caller passes no ``ignore_index``: its constructor's
    ``ignore_index``/``ignore_label`` (mmseg's ``OhemCrossEntropy``), else the default of its
    ``forward``'s ``ignore_index``; ``_UNKNOWN`` when neither says."""
    named, _ = _params(loss_cls.__init__)
    for key in ("ignore_index", "ignore_label"):
        if key in named:
            return loss_cfg.get(key, named[key].default)
    fwd, _ = _params(loss_cls.forward)
    param = fwd.get("ignore_index")
    if param is None or param.default is inspect.Parameter.empty:
        return _UNKNOWN
    return param.default


def check_loss_placement(site: LossSite) -> None:
    """A ``loss_decode`` entry stands where its head calls it, as its head calls it.

    Raises:
        RunCheckError: the head never calls ``loss_decode`` (naming where a loss works); a
            DDRNet/PIDNet head's loss list has another length than the head calls, or an
            entry it calls without ``ignore_index`` ignores another label than the head's; a
            marginal loss is given PIDNet's boundary (edge-label) term.
    """
    head_cls = _registered(site.head_cfg.get("type"))
    if head_cls is None:
        return
    never = _never_calls_loss_decode(head_cls, site.head_path)
    if never is not None:
        raise _error(f"{site.path} is never called: {never}")
    positional = _positional_calls(head_cls)
    if positional is None:
        return
    name, calls = positional
    listing = ", ".join(
        f"[{i}] {key} on the {branch}" for i, (key, branch, _, _) in enumerate(calls)
    )
    if site.index is None or site.count != len(calls):
        got = "a single loss dict" if site.index is None else f"{site.count} losses"
        raise _error(
            f"{site.head_path}.loss_decode: {name} calls exactly {len(calls)} losses by "
            f"position ({listing}), got {got}; give a list of {len(calls)} loss dicts"
        )
    key, branch, passes_ignore, per_class = calls[site.index]
    loss_cls = _registered(site.cfg.get("type")) if isinstance(site.cfg, dict) else None
    if loss_cls is None:
        return
    if _is_marginal(loss_cls) and not per_class:
        raise _error(
            f"{site.path} ({loss_cls.__name__}): {name} calls loss_decode[{site.index}] on its "
            f"{branch}, where a class-marginal loss does not apply; keep the base's loss there "
            f"and put the marginal loss at loss_decode[1] ({calls[1][0]})"
        )
    head_ignore = site.head_cfg.get("ignore_index", DEFAULT_IGNORE_INDEX)
    if per_class and not passes_ignore:
        ignored = _forward_ignore_index(loss_cls, site.cfg)
        if ignored is not _UNKNOWN and ignored != head_ignore:
            fits = [
                n
                for n in ("CEMarginalLoss", "LabelMarginalLoss")
                if _registered(n) is not None
                and _forward_ignore_index(_registered(n), {}) == head_ignore
            ]
            fits.append(f"OhemCrossEntropy with ignore_label={head_ignore}")
            raise _error(
                f"{site.path} ({loss_cls.__name__}): {name} calls it without ignore_index, so "
                f"it ignores label {ignored!r} while the head's ignore_index is {head_ignore} "
                f"(pixels labelled {head_ignore} would be out of range); use a loss that ignores "
                f"{head_ignore} when not told: {' or '.join(fits)}"
            )


# --- every loss builds ------------------------------------------------------------------------

_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


#: Names that users give the paper's symbols: ``lambda`` is the marginal weight, ``T``/``tau``
#: the softmax temperature of the predicted proportions.
_SYNONYMS = {
    "lambda": "marginal_weight",
    "lamda": "marginal_weight",
    "lam": "marginal_weight",
    "lmbda": "marginal_weight",
    "lambd": "marginal_weight",
    "tau": "temperature",
    "t": "temperature",
}


def closest_key(key: str, accepted: list[str]) -> str | None:
    """The accepted key meant by ``key``: a known synonym of the paper's symbols, else the most
    similar by ``difflib.get_close_matches``."""
    synonym = _SYNONYMS.get(key.lower())
    if synonym in accepted:
        return synonym
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.0)
    return close[0] if close else None


def _unknown_key_message(path: str, loss_cls: type, key: str, named: dict) -> str:
    accepted = sorted(named)
    close = closest_key(key, accepted)
    closest = f"closest: {close!r}; " if close else ""
    return (
        f"{path}.{key}: {loss_cls.__name__} has no key {key!r} ({closest}accepted keys: "
        f"{', '.join(accepted)}); rename or remove {path}.{key}"
    )


def _bad_value_key(message: str, loss_cfg: dict) -> str | None:
    """The config key that a constructor's error message names (first mentioned)."""
    found = []
    for key in loss_cfg:
        if key == "type":
            continue
        match = re.search(rf"(?<![\w]){re.escape(str(key))}(?![\w])", message)
        if match:
            found.append((match.start(), key))
    return min(found)[1] if found else None


def check_loss_builds(site: LossSite) -> None:
    """The ``loss_decode`` entry builds with its config's keys and values.

    The loss class is instantiated directly (no model is built); a type that is not registered
    is left to :func:`mmseg_marginal.utils.run_checks.check_loss_types`.

    Raises:
        RunCheckError: an unknown key (naming the accepted keys and the closest one), or a value
            the loss refuses (naming the loss, the key's config path and the loss's reason).
    """
    if not isinstance(site.cfg, dict):
        return
    loss_cls = _registered(site.cfg.get("type"))
    if loss_cls is None:
        return
    kwargs = {k: v for k, v in site.cfg.items() if k != "type"}
    named, var_kw = _params(loss_cls.__init__)
    if not var_kw:
        for key in kwargs:
            if key not in named:
                raise _error(_unknown_key_message(site.path, loss_cls, key, named))
    try:
        with warnings.catch_warnings():  # the Runner's build shows the losses' own warnings
            warnings.simplefilter("ignore")
            loss_cls(**kwargs)
    except TypeError as exc:
        match = _UNEXPECTED.search(str(exc))
        if match and match.group(1) in kwargs:
            raise _error(_unknown_key_message(site.path, loss_cls, match.group(1), named)) from exc
        raise _error(
            f"{site.path}: {loss_cls.__name__} cannot be built: {_first_line(exc)}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - a loss may refuse a value with any error type
        message = _first_line(exc).removeprefix(f"{loss_cls.__name__}: ")
        key = _bad_value_key(message, kwargs)
        if key is None:
            raise _error(
                f"{site.path}: {loss_cls.__name__} refuses its config: {message}; fix the "
                f"keys of {site.path}"
            ) from exc
        raise _error(
            f"{site.path}.{key}={kwargs[key]!r}: {loss_cls.__name__} refuses it: {message}; "
            f"change {site.path}.{key}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_loss_configs(cfg: Any) -> None:
    """Placement (:func:`check_loss_placement`) and build (:func:`check_loss_builds`) of every
    ``loss_decode`` entry of ``cfg.model``.

    Raises:
        RunCheckError: the first problem found, in config order.
    """
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    for site in loss_sites(cfg.get("model") or {}):
        check_loss_placement(site)
        check_loss_builds(site)


# --- data_root ----------------------------------------------------------------------------


def _cfg_option_path(where: str) -> str:
    """``a.datasets[1].b`` -> ``a.datasets.1.b`` (mmengine's ``--cfg-options`` syntax)."""
    return re.sub(r"\[(\d+)\]", r".\1", where)


def _leaf_datasets(cfg: Any) -> list[tuple[str, dict]]:
    from .run_checks import _dataset_cfgs

    leaves = []
    for split in ("train", "val", "test"):
        loader = cfg.get(f"{split}_dataloader")
        if loader:
            leaves += list(_dataset_cfgs(loader.get("dataset"), f"{split}_dataloader.dataset"))
    return leaves


def file_data_root(cfg: Any) -> Any:
    """The top-level ``data_root`` that the config's files give, before any later change.

    Read from ``cfg.text`` (mmengine keeps the text of the file and of each base, every one
    after a line with its path; bases come first): the last top-level ``data_root = '<text>'``
    in that order. ``_UNKNOWN`` when a file cannot be parsed or assigns something else than a
    string literal, or the config was not read from files; None when no file assigns it.
    """
    import ast

    try:
        text = cfg.text
    except Exception:  # noqa: BLE001 - a Config built from a dict has no files
        return _UNKNOWN
    chunks: list[list[str]] = []
    for line in text.splitlines():
        if line.endswith(".py") and osp.isfile(line):
            chunks.append([])
        elif chunks:
            chunks[-1].append(line)
    if not chunks:  # built in code, not read from files
        return _UNKNOWN
    value: Any = None
    for chunk in chunks:
        try:
            tree = ast.parse("\n".join(chunk))
        except SyntaxError:
            return _UNKNOWN
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "data_root" for t in node.targets
            ):
                if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                    return _UNKNOWN
                value = node.value.value
    return value


def check_data_root_override(cfg: Any) -> None:
    """A top-level ``data_root`` changed after the config file was read reaches a dataloader.

    mmengine substitutes a config file's variables when it reads the file, so setting the
    top-level ``data_root`` afterwards (``--cfg-options data_root=...``) changes no dataset.
    Reported when the top-level ``data_root`` differs from the one the config's files give
    (:func:`file_data_root`) and no leaf dataset of a dataloader uses it.

    Raises:
        RunCheckError: naming the override, the data roots the dataloaders use, and the
            ``--cfg-options`` keys to set instead.
    """
    root = cfg.get("data_root")
    if not isinstance(root, str):
        return
    leaves = [(where, ds) for where, ds in _leaf_datasets(cfg) if "data_root" in ds]
    if not leaves or any(ds.get("data_root") == root for _, ds in leaves):
        return
    file_root = file_data_root(cfg)
    if file_root is _UNKNOWN or file_root == root:
        return
    used = ", ".join(f"{where}.data_root={ds.get('data_root')!r}" for where, ds in leaves)
    fix = " ".join(f"{_cfg_option_path(where)}.data_root={root}" for where, _ in leaves)
    raise _error(
        f"data_root={root!r} is set at the top level but no dataloader uses it ({used}): "
        "mmengine fills a config file's variables in when it reads the file, so changing "
        f"data_root later does not reach the datasets; set them instead: --cfg-options {fix}"
    )


# --- label values -------------------------------------------------------------------------


def model_label_space(model_cfg: Any) -> tuple[str, int, int] | None:
    """``(head path, num_classes, ignore_index)`` of the model's (last) decode head.

    Looks through KNet's ``kernel_generate_head``; None when the config does not say.
    """
    if not isinstance(model_cfg, dict):
        return None
    head = model_cfg.get("decode_head")
    where = "model.decode_head"
    if isinstance(head, (list, tuple)) and head:
        where = f"{where}[{len(head) - 1}]"
        head = head[-1]
    if not isinstance(head, dict):
        return None
    if head.get("num_classes") is None and isinstance(head.get("kernel_generate_head"), dict):
        head = head["kernel_generate_head"]
        where = f"{where}.kernel_generate_head"
    if head.get("num_classes") is None:
        return None
    return where, int(head["num_classes"]), int(head.get("ignore_index", DEFAULT_IGNORE_INDEX))


def _annotation_loader(dataset: Any) -> Any:
    """The dataset pipeline's annotation loader (mmcv's ``LoadAnnotations`` or a subclass)."""
    from mmcv.transforms import LoadAnnotations

    for transform in getattr(dataset.pipeline, "transforms", []):
        if isinstance(transform, LoadAnnotations):
            return transform
    return None


def sample_indices(length: int, count: int) -> list[int]:
    """``min(length, count)`` indices spread evenly over ``range(length)``, first and last
    included."""
    if length <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, length - 1, num=min(length, count)).round()})


def check_label_values(cfg: Any, split: str = "train", samples: int = LABEL_SAMPLES) -> None:
    """The annotations of up to ``samples`` images per training dataset are valid labels.

    Each local leaf dataset of the split's dataloader is built (file lists only) and the
    annotations of evenly spread samples are read by the pipeline's own ``LoadAnnotations``,
    which applies the dataset's ``reduce_zero_label`` and ``label_map``. Every value must be
    in ``[0, num_classes)`` of the model's decode head or its ``ignore_index``.

    Raises:
        RunCheckError: naming the annotation file, the values outside the range, the head's
            ``num_classes``/``ignore_index`` and the dataset's ``reduce_zero_label``, with the
            likely fix; or a dataset or annotation that cannot be loaded.
    """
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    from .run_checks import _dataset_cfgs, remote_backend

    loader = cfg.get(f"{split}_dataloader")
    space = model_label_space(cfg.get("model"))
    if not loader or space is None:
        return
    head, num_classes, ignore_index = space
    scope = cfg.get("default_scope", "mmseg") or "mmseg"
    for where, ds_cfg in _dataset_cfgs(loader.get("dataset"), f"{split}_dataloader.dataset"):
        root = ds_cfg.get("data_root") or ""
        if root and remote_backend(root, ds_cfg.get("backend_args")) is not None:
            continue  # noted by check_data_folders
        with DefaultScope.overwrite_default_scope(scope):
            try:
                dataset = DATASETS.build(ds_cfg)
            except Exception as exc:  # noqa: BLE001 - any failure here fails the Runner too
                raise _error(f"{where}: the dataset cannot be built: {_first_line(exc)}") from exc
            load = _annotation_loader(dataset)
            if load is None:
                continue
            for i in sample_indices(len(dataset), samples):
                info = dataset.get_data_info(i)
                try:
                    results = load(dict(info))
                except Exception as exc:  # noqa: BLE001
                    raise _error(
                        f"{where}: cannot read annotation {info.get('seg_map_path')}: "
                        f"{_first_line(exc)}"
                    ) from exc
                _check_values(results, info, where, head, num_classes, ignore_index)


def _check_values(
    results: dict, info: dict, where: str, head: str, num_classes: int, ignore_index: int
) -> None:
    gt = results.get("gt_seg_map")
    if gt is None:
        return
    values = np.unique(np.asarray(gt))
    bad = [int(v) for v in values if not (0 <= v < num_classes) and v != ignore_index]
    if not bad:
        return
    rzl = bool(results.get("reduce_zero_label", info.get("reduce_zero_label", False)))
    shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
    if not rzl and max(bad) == num_classes and 0 in values:
        fix = (
            f"if label 0 means 'unlabelled' and 1..{num_classes} are the classes, set "
            f"{where}.reduce_zero_label=True"
        )
    else:
        fix = (
            f"convert the annotations to train ids 0..{num_classes - 1} (and {ignore_index}), "
            f"or set {head}.num_classes to the dataset's class count"
        )
    raise _error(
        f"annotation {info.get('seg_map_path')} has label values {shown} outside "
        f"[0, {num_classes}) and ignore_index {ignore_index} ({head}.num_classes={num_classes}, "
        f"{where}.reduce_zero_label={rzl}): {fix}"
    )
