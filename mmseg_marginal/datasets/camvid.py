"""CamVid (SegNet's 360x480 version) for mmseg."""

from typing import Dict, Optional, Sequence, Union

from mmseg.registry import DATASETS

from .checked_dataset import CheckedSegDataset

#: Annotation value of the void ("Unlabelled") class in SegNet's CamVid.
CAMVID_VOID = 11


@DATASETS.register_module()
class CamVidDataset(CheckedSegDataset):
    """CamVid road scenes as distributed with the SegNet tutorial (360x480).

    Brostow, Fauqueur, Cipolla, "Semantic object classes in video: A
    high-definition ground truth database", Pattern Recognition Letters, 2009.

    11 classes (annotation values 0..10): Sky, Building, Pole, Road, Sidewalk,
    Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist. Annotation value 11 is
    void ("Unlabelled"): it is mapped to mmseg's ``ignore_index`` 255 when the
    annotation is loaded (through the ``label_map`` that ``LoadAnnotations``
    applies), so every loss and metric ignores it without further settings.

    Layout (the SegNet release, images and annotations share a file name)::

        data/camvid/train/*.png      data/camvid/trainannot/*.png   (367)
        data/camvid/val/*.png        data/camvid/valannot/*.png     (101)
        data/camvid/test/*.png       data/camvid/testannot/*.png    (233)

    e.g. ``data_prefix=dict(img_path='train', seg_map_path='trainannot')``.

    Args:
        img_suffix (str): suffix of the images. Defaults to '.png'.
        seg_map_suffix (str): suffix of the annotations. Defaults to '.png'.
        **kwargs: the arguments of ``BaseSegDataset``.
    """

    METAINFO = dict(
        classes=(
            "Sky",
            "Building",
            "Pole",
            "Road",
            "Sidewalk",
            "Tree",
            "SignSymbol",
            "Fence",
            "Car",
            "Pedestrian",
            "Bicyclist",
        ),
        # SegNet's CamVid colours.
        palette=[
            [128, 128, 128],
            [128, 0, 0],
            [192, 192, 128],
            [128, 64, 128],
            [60, 40, 222],
            [128, 128, 0],
            [192, 128, 128],
            [64, 64, 128],
            [64, 0, 128],
            [64, 64, 0],
            [0, 128, 192],
        ],
    )

    def __init__(
        self, img_suffix: str = ".png", seg_map_suffix: str = ".png", **kwargs: object
    ) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Union[Dict[int, int], None]:
        """mmseg's label map for a class subset, plus void (11) -> 255.

        Args:
            new_classes (Sequence, optional): classes chosen in ``metainfo``;
                None keeps all 11.

        Returns:
            dict[int, int]: annotation value -> training label; always maps
            :data:`CAMVID_VOID` to 255 (mmseg's ignore index).
        """
        label_map = super().get_label_map(new_classes) or {}
        label_map[CAMVID_VOID] = 255
        return label_map
