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
into ``DIR/cityscapes_<split>_submission.zip``. The work is done by
``mmseg_marginal.utils.cityscapes_submission.write_submission``; this file is its command line.

Which checkpoint: for the paper's Table 5 (test server), the one selected on Cityscapes val,
``WORK_DIR/best_mIoU_iter_*.pth`` (the best per-epoch validation, kept by the Table 4
configs' ``CheckpointHook(save_best='mIoU')``), as the authors' ``tools/test_net.py`` loads
``best.pth``; the selection is made on val and the score reported on test.

The data root has the layout that mmseg's converter (``tools/dataset_converters/cityscapes.py``)
produces: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png``. A missing folder or an image without its
annotation stops the command before inference with an error naming the missing path, and so
does a checkpoint whose number of classes differs from the config's.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

from mmseg_marginal.utils.cityscapes_submission import write_submission


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
    cfg = Config.fromfile(args.config)  # imports mmseg_marginal through custom_imports
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return write_submission(
        cfg, args.checkpoint, args.out, args.data_root, args.split, args.launcher
    )


def cli() -> None:
    """``main`` with the user errors (bad paths, class counts, checkpoints) as one line."""
    from mmseg_marginal.engine.checkpoint import CheckpointLoadError
    from mmseg_marginal.utils.launch import shutdown_distributed

    try:
        main()
    except (FileNotFoundError, ValueError, CheckpointLoadError) as exc:
        shutdown_distributed(synchronize=False)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    shutdown_distributed()


if __name__ == "__main__":
    cli()
