"""Checks of a split's folders in mmseg's layout, with errors that name the missing path."""

from __future__ import annotations

import os
import os.path as osp


def list_image_annotation_pairs(
    img_dir: str,
    ann_dir: str | None,
    img_suffix: str,
    seg_map_suffix: str,
    where: str = "",
) -> list[tuple[str, str | None]]:
    """List a split's ``(image, annotation)`` paths as mmseg's ``BaseSegDataset`` pairs them.

    Images are the files under ``img_dir`` (recursively) ending in ``img_suffix``; the
    annotation of ``img_dir/<rel><img_suffix>`` is ``ann_dir/<rel><seg_map_suffix>``.

    Args:
        img_dir (str): Image folder of the split.
        ann_dir (str | None): Annotation folder; None for a split without annotations.
        img_suffix (str): Image file suffix, e.g. ``'.png'`` or ``'_leftImg8bit.png'``.
        seg_map_suffix (str): Annotation suffix, e.g. ``'_gtFine_labelTrainIds.png'``.
        where (str): Where the folders come from (a config key), added to the messages.

    Returns:
        list[tuple[str, str | None]]: Sorted pairs.

    Raises:
        FileNotFoundError: A folder is missing, the image folder holds no image, or images
            have no annotation; the message names the (first) missing path and the count.
    """
    suffix_note = f" ({where})" if where else ""
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f"image folder not found: {osp.abspath(img_dir)}{suffix_note}")
    if ann_dir is not None and not osp.isdir(ann_dir):
        raise FileNotFoundError(
            f"annotation folder not found: {osp.abspath(ann_dir)}{suffix_note}; the images are "
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
            f"no image ending in {img_suffix!r} in {osp.abspath(img_dir)}{suffix_note}"
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
            f"'*{seg_map_suffix}' in {osp.abspath(ann_dir)}{suffix_note}"
        )
    return pairs
