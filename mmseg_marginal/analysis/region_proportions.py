"""Per-class region proportions of a dataset split (the paper's "mRegProp" row).

Only the annotations of a split are read (no images, no model), each loaded as mmseg's
``LoadAnnotations`` does in the dataset's pipeline (``label_map``, ``reduce_zero_label``; e.g.
CamVid's void value 11 becomes 255). Each annotation's pixels are counted per class by
:func:`~mmseg_marginal.evaluation.metrics.image_proportion_counts`, the function of
``ProportionMetric``, so that the valid pixels, the class counts and the label checks are the
metric's. Per class, two statistics:

- ``mRegProp``: the mean over images of the share of the image's pixels in the class (the row
  "mRegProp" of Table 4 of Liu et al., "The hidden label-marginal biases of segmentation
  losses");
- ``pooled``: the share of the class in all the pixels of the split (the usual "pixel share").

Each with two denominators: ``all`` (all pixels, void included: the paper's mRegProp row for
Cityscapes sums to 88.6%, so it uses this one) and ``valid`` (non-void pixels only: each row
sums to 100%).

Example::

    from mmseg_marginal.analysis.region_proportions import region_proportions

    result = region_proportions('configs/_base_/datasets/camvid.py', split='train')
    print(result['markdown'])
"""

from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from ..evaluation.metrics import image_proportion_counts

#: The denominators of the proportions, all pixels (void included) or the valid ones.
DENOMINATORS = ("all", "valid")


def build_dataset(
    config: str, split: str = "train", cfg_options: Optional[dict] = None
) -> BaseDataset:
    """Build the dataset of ``<split>_dataloader`` of a config.

    Args:
        config (str): Path of an mmseg config (a dataset ``_base_`` or a full config).
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        cfg_options (dict, optional): Overrides, as ``--cfg-options`` of mmseg's tools.

    Returns:
        BaseDataset: The built dataset (wrappers such as ``RepeatDataset`` kept).

    Raises:
        FileNotFoundError: if the config does not exist.
        ValueError: if the config has no ``<split>_dataloader.dataset``.
    """
    if not Path(config).is_file():
        raise FileNotFoundError(f"config not found: {config}")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    key = f"{split}_dataloader"
    if not isinstance(cfg.get(key), dict) or "dataset" not in cfg[key]:
        raise ValueError(f"config {config} has no {key}.dataset (choose --split train|val|test)")
    init_default_scope(cfg.get("default_scope", "mmseg"))
    return DATASETS.build(cfg[key]["dataset"])


def _base_datasets(dataset: object) -> Iterator[BaseDataset]:
    """Yield the datasets inside wrappers (Repeat/ClassBalanced: once; Concat: each)."""
    if hasattr(dataset, "datasets"):
        for inner in dataset.datasets:
            yield from _base_datasets(inner)
    elif hasattr(dataset, "dataset"):
        yield from _base_datasets(dataset.dataset)
    else:
        yield dataset


def _annotation_loader(dataset: BaseDataset) -> object:
    """The dataset pipeline's annotation transform, or mmseg's ``LoadAnnotations``."""
    for transform in getattr(dataset.pipeline, "transforms", []):
        if "LoadAnnotations" in type(transform).__name__:
            return transform
    from mmseg.datasets.transforms import LoadAnnotations

    return LoadAnnotations()


def class_counts(dataset: BaseDataset, ignore_index: int = 255) -> Dict[str, object]:
    """Count the pixels of each class in each annotation of a dataset.

    The pixels labelled ``ignore_index`` are void: counted in ``num_all`` only. The counting
    and the label checks are those of ``ProportionMetric``
    (:func:`~mmseg_marginal.evaluation.metrics.image_proportion_counts`).

    Args:
        dataset (BaseDataset): An mmseg dataset (or wrapper) with ``metainfo['classes']``.
        ignore_index (int): The void label after loading. Default: 255.

    Returns:
        dict: ``counts`` (N, K) int64 pixel counts per image and class, ``num_all`` (N,) pixels
        per image, ``classes`` (list of K names).

    Raises:
        ValueError: if an annotation holds a label that is neither a class nor
            ``ignore_index`` (the message names the file and the label), or the dataset is
            empty.
    """
    classes = list(dataset.metainfo["classes"])
    num_classes = len(classes)
    counts: List[np.ndarray] = []
    num_all: List[int] = []
    for base in _base_datasets(dataset):
        loader = _annotation_loader(base)
        for index in range(len(base)):
            info = base.get_data_info(index)
            results = dict(
                seg_map_path=info["seg_map_path"],
                reduce_zero_label=info.get("reduce_zero_label", False),
                label_map=info.get("label_map", None),
                seg_fields=[],
            )
            label = torch.from_numpy(np.array(loader(results)["gt_seg_map"], dtype=np.int64))
            try:
                # no prediction here: an all-zero one, whose counts are not used
                gt_counts, _, _, pixels = image_proportion_counts(
                    torch.zeros_like(label), label, num_classes, ignore_index
                )
            except ValueError as error:
                raise ValueError(f"{info['seg_map_path']}: {error}") from None
            counts.append(gt_counts.numpy())
            num_all.append(pixels)
    if not counts:
        raise ValueError("the dataset has no annotation")
    return dict(
        counts=np.stack(counts).astype(np.int64),
        num_all=np.asarray(num_all, dtype=np.int64),
        classes=classes,
    )


def proportion_stats(counts: np.ndarray, num_all: np.ndarray, denominator: str) -> dict:
    """Mean-over-images and pooled class proportions, in percent.

    Args:
        counts (np.ndarray): (N, K) pixel counts per image and class.
        num_all (np.ndarray): (N,) pixels per image (void included).
        denominator (str): ``'all'`` (void counted, the paper's mRegProp row) or ``'valid'``.

    Returns:
        dict: ``mregprop`` (K,) mean over images of count / denominator, ``pooled`` (K,)
        sum of counts / sum of denominators, ``void_mean`` and ``void_pooled`` (void share,
        0 for ``'valid'``), ``num_images`` (images with a non-empty denominator).

    Raises:
        ValueError: if ``denominator`` is unknown or no image has a pixel in it.
    """
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, got {denominator!r}")
    counts = counts.astype(np.float64)
    num_valid = counts.sum(1)
    denom = num_all.astype(np.float64) if denominator == "all" else num_valid
    keep = denom > 0
    if not keep.any():
        raise ValueError("no image has a pixel in the denominator")
    void = (num_all - num_valid) if denominator == "all" else np.zeros_like(num_valid)
    return dict(
        mregprop=100 * (counts[keep] / denom[keep, None]).mean(0),
        pooled=100 * counts.sum(0) / denom.sum(),
        void_mean=float(100 * (void[keep] / denom[keep]).mean()),
        void_pooled=float(100 * void.sum() / denom.sum()),
        num_images=int(keep.sum()),
    )


def format_markdown(
    classes: Sequence[str], stats: Dict[str, dict], title: Optional[str] = None
) -> str:
    """Markdown table: one row per class, then void and sum; columns per denominator.

    Args:
        classes (Sequence[str]): The K class names.
        stats (dict): Denominator -> :func:`proportion_stats` of it.
        title (str, optional): A ``##`` heading above the table.

    Returns:
        str: The table and a note on the columns, ending with a newline.
    """
    denominators = [d for d in DENOMINATORS if d in stats]
    header = ["Class"]
    for d in denominators:
        header += [f"mRegProp ({d})", f"pooled ({d})"]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def row(name: str, values: List[float]) -> str:
        return "| " + " | ".join([name] + [f"{v:.2f}" for v in values]) + " |"

    for k, name in enumerate(classes):
        values = []
        for d in denominators:
            values += [stats[d]["mregprop"][k], stats[d]["pooled"][k]]
        lines.append(row(name, values))
    values = []
    for d in denominators:
        values += [stats[d]["void_mean"], stats[d]["void_pooled"]]
    lines.append(row("(void)", values))
    values = []
    for d in denominators:
        values += [stats[d]["mregprop"].sum(), stats[d]["pooled"].sum()]
    lines.append(row("sum of classes", values))
    lines += [
        "",
        "Percent. mRegProp: mean over images of the class's share of the image; pooled: share of "
        "the class in all pixels of the split. Denominator 'all' counts void pixels (the "
        "paper's mRegProp row, Table 4: its Cityscapes row sums to 88.6%); 'valid' does not.",
    ]
    return "\n".join(lines) + "\n"


def region_proportions(
    config: str,
    split: str = "train",
    denominators: Sequence[str] = DENOMINATORS,
    ignore_index: int = 255,
    cfg_options: Optional[dict] = None,
) -> dict:
    """Build the split's dataset and compute its statistics.

    Args:
        config (str): Path of an mmseg config with ``<split>_dataloader.dataset``.
        split (str): ``'train'``, ``'val'`` or ``'test'``. Default: ``'train'``.
        denominators (Sequence[str]): Some of :data:`DENOMINATORS`. Default: both.
        ignore_index (int): The void label after loading. Default: 255.
        cfg_options (dict, optional): Overrides of the config.

    Returns:
        dict: ``classes``, ``num_images``, ``stats`` (denominator -> :func:`proportion_stats`)
        and ``markdown`` (the table).

    Raises:
        FileNotFoundError: from :func:`build_dataset`.
        ValueError: from :func:`build_dataset`, :func:`class_counts` and
            :func:`proportion_stats`.
    """
    dataset = build_dataset(config, split, cfg_options)
    counted = class_counts(dataset, ignore_index)
    stats = {d: proportion_stats(counted["counts"], counted["num_all"], d) for d in denominators}
    num_images = len(counted["num_all"])
    title = f"Region proportions of {Path(config).name}, split {split} ({num_images} images)"
    return dict(
        classes=counted["classes"],
        num_images=num_images,
        stats=stats,
        markdown=format_markdown(counted["classes"], stats, title),
    )
