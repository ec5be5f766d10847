"""Per-class region-proportion statistics of a dataset config (the paper's "mRegProp" row).

Reads only the annotations of a split (no images, no model), loads each one as mmseg's
``LoadAnnotations`` does in the dataset's pipeline, and prints per class the mean over images
of the class's share of the image (``mRegProp``) and its share of all the pixels of the split
(``pooled``), with all pixels (void included, as the paper's row) and with the valid pixels as
denominator. The computation is :mod:`mmseg_marginal.analysis.region_proportions`.

Example::

    python tools/analysis/region_proportions.py configs/_base_/datasets/camvid.py \\
        --split train --out camvid_train.md
"""

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmseg_marginal.analysis.region_proportions import DENOMINATORS, region_proportions


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="mmseg config with <split>_dataloader.dataset")
    parser.add_argument("--split", default="train", choices=["train", "val", "test"])
    parser.add_argument(
        "--denominator",
        default="both",
        choices=["all", "valid", "both"],
        help="'all': void pixels counted (the paper's mRegProp row); 'valid': not counted",
    )
    parser.add_argument("--ignore-index", type=int, default=255, help="void label after loading")
    parser.add_argument("--out", help="also write the markdown table to this file")
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction, help="override config settings"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    denominators = DENOMINATORS if args.denominator == "both" else (args.denominator,)
    result = region_proportions(
        args.config, args.split, denominators, args.ignore_index, args.cfg_options
    )
    print(result["markdown"], end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(result["markdown"])
    return result


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
