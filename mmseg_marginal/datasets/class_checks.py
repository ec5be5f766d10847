"""Does a config's model predict as many classes as its dataset has?

mmseg builds the model and the datasets separately and never compares their class counts. A
19-class model trained on binary data (DRIVE, labels 0/1) trains without a complaint, because
labels 0 and 1 are valid for 19 classes, and its scores are wrong; the reverse fails only at the
first loss call. :func:`class_count_mismatch` compares the two from the config alone, before any
data is read.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence


def dataset_classes(dataset_cfg: dict) -> Optional[Sequence[str]]:
    """The class names a dataset config will have (``metainfo.classes`` or its class's).

    Args:
        dataset_cfg (dict): A leaf dataset config (``type``, optionally ``metainfo``).

    Returns:
        Sequence[str] | None: The class names, or None when they cannot be known from the
        config (unregistered type, no ``METAINFO``).
    """
    metainfo = dataset_cfg.get("metainfo") or {}
    if metainfo.get("classes") is not None:
        return tuple(metainfo["classes"])
    from mmseg.registry import DATASETS

    dataset_type = dataset_cfg.get("type")
    cls = DATASETS.get(dataset_type) if isinstance(dataset_type, str) else dataset_type
    classes = getattr(cls, "METAINFO", {}).get("classes") if cls is not None else None
    return tuple(classes) if classes is not None else None


def _heads(model_cfg: dict) -> Iterator[tuple[str, dict]]:
    for key in ("decode_head", "auxiliary_head"):
        head = model_cfg.get(key)
        heads = head if isinstance(head, (list, tuple)) else [head]
        for i, one in enumerate(heads):
            if isinstance(one, dict) and one.get("num_classes") is not None:
                where = f"model.{key}[{i}]" if isinstance(head, (list, tuple)) else f"model.{key}"
                yield where, one


def class_count_mismatch(model_cfg: Any, dataset_cfg: dict) -> Optional[str]:
    """Describe a difference between the heads' ``num_classes`` and the dataset's classes.

    Args:
        model_cfg (dict): ``cfg.model``.
        dataset_cfg (dict): A leaf dataset config of a dataloader.

    Returns:
        str | None: A message naming the head, its ``num_classes`` (and ``out_channels``), the
        dataset type and its classes; None when they agree or either side is unknown.
    """
    if not isinstance(model_cfg, dict):
        return None
    classes = dataset_classes(dataset_cfg)
    if classes is None:
        return None
    for where, head in _heads(model_cfg):
        num_classes = int(head["num_classes"])
        if num_classes != len(classes):
            out = head.get("out_channels")
            out_text = f", out_channels={out}" if out is not None else ""
            kind = "binary" if len(classes) == 2 else f"{len(classes)}-class"
            return (
                f"{where} has num_classes={num_classes}{out_text} but the {kind} dataset "
                f"{dataset_cfg.get('type')} has {len(classes)} classes {tuple(classes)}; set "
                f"num_classes={len(classes)}"
                + (" (out_channels=1 for one sigmoid logit)" if len(classes) == 2 else "")
                + " or choose the dataset the model is meant for"
            )
    return None
