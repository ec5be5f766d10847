"""Cityscapes test-server submission: inference, labelIds PNGs, one zip to upload.

Usage::

    python tools/cityscapes_submission.py CONFIG CHECKPOINT --out DIR
    # under the distributed launcher (each rank writes its share, rank 0 zips):
    python -m torch.distributed.run --nproc_per_node 4 tools/cityscapes_submission.py \\
        CONFIG CHECKPOINT --out DIR --launcher pytorch

The command runs the config's model, with its test pipeline and whole-image inference, over
``DATA_ROOT/leftImg8bit/test`` through mmengine's ``Runner`` (so ``--launcher`` works as in
mmseg's ``tools/test.py``). mmseg's ``CityscapesMetric`` (``format_only=True``) maps every
predicted trainId to its Cityscapes labelId (``cityscapesscripts.helpers.labels``) and writes
``DIR/labelIds/<city>_<seq>_<frame>_leftImg8bit.png``, the name pattern
(``<city>_<seq>_<frame>*.png``) by which the server's ``evalPixelLevelSemanticLabeling``
finds a prediction. Rank 0 then checks that there is one PNG per image and packs them, flat,
into ``DIR/cityscapes_<split>_submission.zip``.

The data root has the layout that mmseg's converter (``tools/dataset_converters/cityscapes.py``)
produces: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png``. A missing folder or an image without its
annotation stops the command before inference with an error naming the missing path, and so
does a checkpoint whose number of classes differs from the config's.
"""

from __future__ import annotations

import argparse
import copy
import os
import os.path as osp
import sys
import zipfile
from typing import Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.dist import barrier, is_main_process

from mmseg_marginal.datasets.folder_checks import list_image_annotation_pairs
from mmseg_marginal.engine.run_checks import (
    check_checkpoint_classes,
    head_num_classes,
    load_state_dict,
)

__all__ = [
    "check_cityscapes_split",
    "cli",
    "main",
    "pack_submission",
    "submission_config",
]


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
    for folder in (img_dir, ann_dir):
        if not osp.isdir(folder):
            raise FileNotFoundError(f"Cityscapes folder not found: {folder}")
    return list_image_annotation_pairs(img_dir, ann_dir, img_suffix, seg_suffix)


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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (mmseg's ``tools/test.py`` conventions)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="config file of the model")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--out", required=True, help="output folder (PNGs and the zip)")
    parser.add_argument(
        "--data-root", default=None, help="Cityscapes root (default: the config's data_root)"
    )
    parser.add_argument(
        "--split", default="test", choices=["train", "val", "test"], help="split to predict"
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override settings of the config, xxx=yyy format, as in mmseg's tools",
    )
    parser.add_argument(
        "--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none", help="launcher"
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Run the submission command; returns the path of the zip (on every rank)."""
    args = parse_args(argv)
    from mmseg_marginal.extras import require_extra

    # mmseg's CityscapesMetric writes the labelIds PNGs with cityscapesscripts' label table
    require_extra("cityscapesscripts.helpers.labels", "the Cityscapes submission")
    cfg = Config.fromfile(args.config)  # imports mmseg_marginal through custom_imports
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher

    num_classes = head_num_classes(cfg.model, "decode_head", 0)
    if num_classes != CITYSCAPES_NUM_CLASSES:
        raise ValueError(
            f"a Cityscapes submission needs the 19 Cityscapes train classes, but the config's "
            f"model.decode_head has num_classes={num_classes}"
        )
    check_checkpoint_classes(load_state_dict(args.checkpoint), cfg.model, args.checkpoint)
    data_root = args.data_root or cfg.test_dataloader.dataset.get("data_root")
    if not data_root:
        raise ValueError("no Cityscapes root: pass --data-root")
    pairs = check_cityscapes_split(data_root, args.split)

    from mmengine.runner import Runner

    from mmseg_marginal.engine.launch import setup_cpu_distributed

    out_dir = osp.abspath(args.out)
    run_cfg = submission_config(cfg, data_root, args.split, out_dir)
    run_cfg.load_from = args.checkpoint
    setup_cpu_distributed(run_cfg, args.launcher)  # gloo and BN where there is no CUDA
    runner = Runner.from_cfg(run_cfg)
    runner.test()

    zip_path = osp.join(out_dir, f"cityscapes_{args.split}_submission.zip")
    barrier()  # every rank has written its PNGs
    if is_main_process():
        pack_submission(osp.join(out_dir, "labelIds"), [img for img, _ in pairs], zip_path)
        print(f"{len(pairs)} labelIds PNGs packed into {zip_path}", flush=True)
    barrier()
    return zip_path


def cli() -> None:
    """``main`` with the user errors (bad paths, class counts, checkpoints) as one line."""
    from mmseg_marginal.engine.checkpoint import CheckpointLoadError
    from mmseg_marginal.engine.launch import shutdown_distributed

    try:
        main()
    except (FileNotFoundError, ValueError, CheckpointLoadError) as exc:
        shutdown_distributed(synchronize=False)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    shutdown_distributed()


if __name__ == "__main__":
    cli()
