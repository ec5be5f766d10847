"""Cityscapes test-server submission: inference, labelIds PNGs, one zip to upload.

:func:`write_submission` runs a config's model, with its test pipeline and whole-image
inference, over ``DATA_ROOT/leftImg8bit/<split>`` through mmengine's ``Runner`` (so the
distributed launchers work as in mmseg's ``tools/test.py``). mmseg's ``CityscapesMetric``
(``format_only=True``) maps every predicted trainId to its Cityscapes labelId
(``cityscapesscripts.helpers.labels``) and writes
``OUT/labelIds/<city>_<seq>_<frame>_leftImg8bit.png``, the name pattern
(``<city>_<seq>_<frame>*.png``) by which the server's ``evalPixelLevelSemanticLabeling`` finds a
prediction. Rank 0 then checks that there is one PNG per image and packs them, flat, into
``OUT/cityscapes_<split>_submission.zip``. ``tools/cityscapes_submission.py`` is its command line.

The data root has the layout that mmseg's converter (``tools/dataset_converters/cityscapes.py``)
produces: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png``. A missing folder or an image without its
annotation stops the run before inference with an error naming the missing path, and so does a
checkpoint whose number of classes differs from the config's.
"""

from __future__ import annotations

import copy
import os
import os.path as osp
import zipfile
from typing import Optional, Sequence

from mmengine.config import Config

from ..datasets.folder_checks import check_split_folders
from .run_checks import check_checkpoint_classes, head_num_classes, load_state_dict

IMG_SUFFIX = "_leftImg8bit.png"
SEG_SUFFIX = "_gtFine_labelTrainIds.png"
CITYSCAPES_NUM_CLASSES = 19


def check_cityscapes_split(
    data_root: str,
    split: str,
    img_suffix: str = IMG_SUFFIX,
    seg_suffix: str = SEG_SUFFIX,
) -> list[tuple[str, str]]:
    """Check a Cityscapes split in mmseg's converted layout and list its image/label pairs.

    Args:
        data_root (str): Root holding ``leftImg8bit/`` and ``gtFine/``.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        img_suffix (str): Suffix of the images. Defaults to ``'_leftImg8bit.png'``.
        seg_suffix (str): Suffix of the annotations. Defaults to
            ``'_gtFine_labelTrainIds.png'`` (written by mmseg's Cityscapes converter).

    Returns:
        list[tuple[str, str]]: ``(image path, annotation path)`` for every image, sorted.

    Raises:
        FileNotFoundError: ``leftImg8bit/<split>`` or ``gtFine/<split>`` is missing, the image
            folder holds no ``*<img_suffix>`` file, or an image has no annotation; the message
            names the missing path.
    """
    img_dir = osp.join(data_root, "leftImg8bit", split)
    ann_dir = osp.join(data_root, "gtFine", split)
    return check_split_folders(img_dir, ann_dir, img_suffix, seg_suffix)


def submission_config(cfg: Config, data_root: str, split: str, out_dir: str) -> Config:
    """The config of the submission run: the test split, no annotations, labelIds writer.

    Args:
        cfg (Config): The training/testing config of the model.
        data_root (str): Cityscapes root.
        split (str): Split to predict.
        out_dir (str): Output folder; PNGs go to ``out_dir/labelIds``.

    Returns:
        Config: A copy of ``cfg`` whose test loop writes labelIds PNGs of ``split``.
    """
    cfg = copy.deepcopy(cfg)
    dataset = cfg.test_dataloader.dataset
    dataset.data_root = data_root
    dataset.data_prefix = dict(img_path=f"leftImg8bit/{split}", seg_map_path=f"gtFine/{split}")
    dataset.img_suffix = IMG_SUFFIX
    dataset.seg_map_suffix = SEG_SUFFIX
    # test-split annotations are placeholders: inference needs none
    dataset.pipeline = [t for t in dataset.pipeline if t.get("type") != "LoadAnnotations"]
    cfg.test_evaluator = dict(
        type="CityscapesMetric",
        output_dir=osp.join(out_dir, "labelIds"),
        format_only=True,
        keep_results=True,
    )
    cfg.work_dir = osp.join(out_dir, "work_dir")
    return cfg


def pack_submission(png_dir: str, image_paths: Sequence[str], zip_path: str) -> str:
    """Zip one ``<city>_<seq>_<frame>_leftImg8bit.png`` per image, flat, for the server.

    Args:
        png_dir (str): Folder with the labelIds PNGs.
        image_paths (Sequence[str]): The ``*_leftImg8bit.png`` inputs; each needs its PNG.
        zip_path (str): Zip file to write.

    Returns:
        str: ``zip_path``.

    Raises:
        FileNotFoundError: A prediction is missing (its path is named).
    """
    names = sorted({osp.basename(p) for p in image_paths})
    for name in names:
        if not osp.isfile(osp.join(png_dir, name)):
            raise FileNotFoundError(f"prediction not found: {osp.join(png_dir, name)}")
    tmp = zip_path + ".part"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(osp.join(png_dir, name), arcname=name)
    os.replace(tmp, zip_path)
    return zip_path


def write_submission(
    cfg: Config,
    checkpoint: str,
    out_dir: str,
    data_root: Optional[str] = None,
    split: str = "test",
    launcher: str = "none",
) -> str:
    """Predict a Cityscapes split and pack the labelIds PNGs into the zip the server takes.

    The checks come first (cityscapesscripts installed, 19 classes in the config and the
    checkpoint, the split's folders and annotations), then one ``Runner.test`` of
    :func:`submission_config`, then :func:`pack_submission` on rank 0.

    Args:
        cfg (Config): The model's config (``Config.fromfile``, options merged).
        checkpoint (str): Checkpoint file or ``http(s)://`` URL.
        out_dir (str): Output folder: ``labelIds/`` PNGs, ``work_dir/`` and the zip.
        data_root (str, optional): Cityscapes root; defaults to the config's test data root.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``, as for mmseg's tools.

    Returns:
        str: ``out_dir/cityscapes_<split>_submission.zip`` (on every rank).

    Raises:
        ValueError: cityscapesscripts is missing, no data root is given, or the config's or
            the checkpoint's class count is not 19
            (:class:`~mmseg_marginal.utils.run_checks.RunCheckError`).
        FileNotFoundError: A folder, image annotation or local checkpoint is missing.
        CheckpointLoadError: The checkpoint cannot be read or fetched.
    """
    from mmengine.dist import barrier, is_main_process
    from mmengine.runner import Runner

    from ..extras import require_extra
    from .launch import setup_cpu_distributed

    # mmseg's CityscapesMetric writes the labelIds PNGs with cityscapesscripts' label table
    require_extra("cityscapesscripts.helpers.labels", "the Cityscapes submission")
    num_classes = head_num_classes(cfg.model, "decode_head", 0)
    if num_classes != CITYSCAPES_NUM_CLASSES:
        raise ValueError(
            f"a Cityscapes submission needs the 19 Cityscapes train classes, but the config's "
            f"model.decode_head has num_classes={num_classes}"
        )
    check_checkpoint_classes(load_state_dict(checkpoint), cfg.model, checkpoint)
    data_root = data_root or cfg.test_dataloader.dataset.get("data_root")
    if not data_root:
        raise ValueError("no Cityscapes root: pass --data-root")
    pairs = check_cityscapes_split(data_root, split)

    out_dir = osp.abspath(out_dir)
    run_cfg = submission_config(cfg, data_root, split, out_dir)
    run_cfg.launcher = launcher
    run_cfg.load_from = checkpoint
    setup_cpu_distributed(run_cfg, launcher)  # gloo and BN where there is no CUDA
    runner = Runner.from_cfg(run_cfg)
    runner.test()

    zip_path = osp.join(out_dir, f"cityscapes_{split}_submission.zip")
    barrier()  # every rank has written its PNGs
    if is_main_process():
        pack_submission(osp.join(out_dir, "labelIds"), [img for img, _ in pairs], zip_path)
        print(f"{len(pairs)} labelIds PNGs packed into {zip_path}", flush=True)
    barrier()
    return zip_path
