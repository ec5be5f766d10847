"""A folder-layout segmentation dataset that fails early, with the offending path."""

import os.path as osp
from typing import List

from mmseg.datasets import BaseSegDataset


class CheckedSegDataset(BaseSegDataset):
    """``BaseSegDataset`` that validates its folders before listing them.

    mmseg's ``BaseSegDataset`` lists the image folder and silently assumes that
    every image has an annotation: a wrong ``data_root`` yields an empty dataset
    (and a confusing error much later, in the sampler), and a split with images
    but no annotations only fails when the first annotation is read. This class
    raises one ``FileNotFoundError`` naming the missing path instead:

    - the data root does not exist;
    - the image folder of the split does not exist or holds no image with
      ``img_suffix``;
    - the annotation folder does not exist, or some images have no annotation
      (the first missing file and the count are given).

    The folder layout and every argument are those of ``BaseSegDataset``.
    """

    def load_data_list(self) -> List[dict]:
        """Check the folders, then list image/annotation pairs like mmseg.

        Returns:
            list[dict]: one dict per image with ``img_path``, ``seg_map_path``,
            ``label_map``, ``reduce_zero_label`` and ``seg_fields``.
        """
        if self.data_root is not None and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f"{type(self).__name__}: data root '{self.data_root}' does not exist "
                "(see the README for how to get and lay out the data)."
            )
        img_dir = self.data_prefix.get("img_path", None)
        ann_dir = self.data_prefix.get("seg_map_path", None)
        if img_dir is not None and not osp.isdir(img_dir):
            raise FileNotFoundError(
                f"{type(self).__name__}: image folder '{img_dir}' does not exist."
            )
        if ann_dir is not None and not osp.isdir(ann_dir):
            raise FileNotFoundError(
                f"{type(self).__name__}: split with images in '{img_dir}' has no annotation "
                f"folder: '{ann_dir}' does not exist."
            )
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(
                f"{type(self).__name__}: no image with suffix '{self.img_suffix}' in '{img_dir}'."
            )
        if ann_dir is not None:
            missing = [d["seg_map_path"] for d in data_list if not osp.isfile(d["seg_map_path"])]
            if missing:
                raise FileNotFoundError(
                    f"{type(self).__name__}: {len(missing)} of {len(data_list)} images in "
                    f"'{img_dir}' have no annotation in '{ann_dir}' (first missing: "
                    f"'{missing[0]}')."
                )
        return data_list
