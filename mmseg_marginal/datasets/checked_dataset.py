"""A folder-layout segmentation dataset that fails early, with the offending path."""

import os.path as osp
from typing import List

from mmseg.datasets import BaseSegDataset

from .folder_checks import check_split_folders


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
        name = type(self).__name__
        if self.data_root is not None and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f"{name}: data root '{self.data_root}' does not exist "
                "(docs/datasets.md says how to get and lay out the data)."
            )
        img_dir = self.data_prefix.get("img_path", None)
        if img_dir is not None and not self.ann_file:
            check_split_folders(
                img_dir,
                self.data_prefix.get("seg_map_path", None),
                self.img_suffix,
                self.seg_map_suffix,
                where=name,
            )
        return super().load_data_list()
