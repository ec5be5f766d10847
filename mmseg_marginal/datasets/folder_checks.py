"""The check of a split's folders in mmseg's layout, with errors that name the missing path.

:func:`check_split_folders` is the one implementation: :class:`CheckedSegDataset` calls it when
it lists its files, the tools' pre-run checks (:mod:`mmseg_marginal.utils.run_checks`) for every
local dataset of a config, and the Cityscapes submission for the split it predicts.
"""

from __future__ import annotations

import os
import os.path as osp


def _place(where: str, data_root: str | None, key: str) -> str:
    """The note that ends a message: ``where``, and with ``data_root`` the config key."""
    if not where:
        return ""
    if data_root is None:
        return f" ({where})"
    if key == "data_prefix":
        return f" ({where}.data_prefix, data_root={data_root!r})"
    return f" ({where}.{key})"


def check_split_folders(
    img_dir: str | None,
    ann_dir: str | None,
    img_suffix: str,
    seg_map_suffix: str,
    ann_file: str | None = None,
    where: str = "",
    data_root: str | None = None,
) -> list[tuple[str, str | None]]:
    """Check one split's folders and list its ``(image, annotation)`` paths as mmseg pairs them.

    Images are the files under ``img_dir`` (recursively) ending in ``img_suffix``; the
    annotation of ``img_dir/<rel><img_suffix>`` is ``ann_dir/<rel><seg_map_suffix>``
    (mmseg's ``BaseSegDataset``). With ``ann_file`` (a split file that chooses the images, as
    mmseg's ``ann_file``), the file and the folders must exist and nothing is listed.

    Args:
        img_dir (str | None): Image folder of the split (``data_prefix['img_path']``); None
            when the dataset has none (only ``ann_file`` is then checked).
        ann_dir (str | None): Annotation folder; None for a split without annotations.
        img_suffix (str): Image file suffix, e.g. ``'.png'`` or ``'_leftImg8bit.png'``.
        seg_map_suffix (str): Annotation suffix, e.g. ``'_gtFine_labelTrainIds.png'``.
        ann_file (str | None): Split file, or None to list the image folder.
        where (str): What the folders belong to (a dataset's name or config key), added to
            the messages.
        data_root (str | None): The dataset's ``data_root`` when ``where`` is a config key:
            ``img_dir``, ``ann_dir`` and a relative ``ann_file`` are then relative to it, and
            the messages name the config key of the path (``<where>.ann_file``,
            ``<where>.data_prefix.img_path``, ``<where>.data_prefix``) and the data root.
            None: the paths are used as given.

    Returns:
        list[tuple[str, str | None]]: Sorted pairs; empty with ``ann_file``.

    Raises:
        FileNotFoundError: The split file or a folder is missing, the image folder holds no
            image, or images have no annotation; the message names the (first) missing path
            and the count.
    """
    root = data_root or ""
    if ann_file:
        ann_path = osp.join(root, ann_file)
        if not osp.isfile(ann_path):
            raise FileNotFoundError(
                f"split file not found: {osp.abspath(ann_path)}"
                f"{_place(where, data_root, 'ann_file')}"
            )
    if img_dir is None:
        return []
    img_dir = osp.join(root, img_dir)
    ann_dir = osp.join(root, ann_dir) if ann_dir is not None else None
    if ann_file:  # the split file chooses the images: check only the folders
        for key, folder in (("img_path", img_dir), ("seg_map_path", ann_dir)):
            if folder is not None and not osp.isdir(folder):
                raise FileNotFoundError(
                    f"data folder not found: {osp.abspath(folder)}"
                    f"{_place(where, data_root, 'data_prefix.' + key)}"
                )
        return []
    note = _place(where, data_root, "data_prefix")
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f"image folder not found: {osp.abspath(img_dir)}{note}")
    if ann_dir is not None and not osp.isdir(ann_dir):
        raise FileNotFoundError(
            f"annotation folder not found: {osp.abspath(ann_dir)}{note}; the images are "
            f"in {osp.abspath(img_dir)}"
        )
    rel_images = sorted(
        osp.relpath(osp.join(top, name), img_dir)
        for top, _, names in os.walk(img_dir)
        for name in names
        if name.endswith(img_suffix)
    )
    if not rel_images:
        raise FileNotFoundError(
            f"no image ending in {img_suffix!r} in {osp.abspath(img_dir)}{note}"
        )
    pairs: list[tuple[str, str | None]] = []
    missing = []
    for rel in rel_images:
        ann = None
        if ann_dir is not None:
            ann = osp.join(ann_dir, rel[: -len(img_suffix)] + seg_map_suffix)
            if not osp.isfile(ann):
                missing.append(ann)
        pairs.append((osp.join(img_dir, rel), ann))
    if missing:
        raise FileNotFoundError(
            f"annotation not found: {osp.abspath(missing[0])}; {len(missing)} of "
            f"{len(rel_images)} images in {osp.abspath(img_dir)} lack their "
            f"'*{seg_map_suffix}' in {osp.abspath(ann_dir)}{note}"
        )
    return pairs
