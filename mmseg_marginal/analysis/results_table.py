"""Per-class IoU of several runs under the mRegProp row (the layout of the paper's Table 4).

Reads the evaluations that mmseg already writes to each work dir's logs (the ``IoUMetric``
per-class tables, "per class results:", of ``<work_dir>/<timestamp>/<timestamp>.log``), so
this works with a stock ``IoUMetric`` and any mmseg work dir. Of each work dir it takes either
the last evaluation of the newest log (``select='last'``: the final validation of a training
run, or the evaluation of ``tools/test.py --work-dir``) or the evaluation with the highest mIoU
over all its logs (``select='best'``: the best validation epoch, whose checkpoint
``CheckpointHook(save_best='mIoU')`` keeps). The paper's Table 4 reports the best validation
epoch: the authors' ``tools/test_net.py`` loads ``best.pth``, the best of their per-epoch
validations on Cityscapes val, the split the table reports (model selection on that split).

The mRegProp row (mean region proportion of each class over the evaluated images) comes from
the ``ProportionMetric`` table of the same evaluation when the config has
``val_evaluator = [dict(type='IoUMetric'), dict(type='ProportionMetric', denominator='all')]``,
or from a dataset config (computed by
:func:`~mmseg_marginal.analysis.region_proportions.region_proportions`; denominator 'all', as
the paper's row).

Example::

    from mmseg_marginal.analysis.results_table import collect_results, format_markdown

    results = collect_results(['work_dirs/ce', 'work_dirs/ce-l1'], names=['CE', 'CE+L1'],
                              select='best')
    print(format_markdown(results))
"""

import math
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..extras import require_extra
from .region_proportions import region_proportions

IOU_MARKER = "per class results:"
PROP_MARKER = "per class region proportions"
_MIOU = re.compile(r"\bmIoU: (\S+)")
_DENOM = re.compile(r"denominator: (\w+) pixels")
_TRAIN_ITER = re.compile(r"Iter\(train\)\s*\[\s*(\d+)/")


def parse_tables(text: str, marker: str) -> List[Tuple[int, Dict[str, List[str]]]]:
    """Find the PrettyTables printed after each line containing ``marker``.

    Args:
        text (str): A log file's text.
        marker (str): The line printed before the table (e.g. ``'per class results:'``).

    Returns:
        list[tuple[int, dict]]: ``(line index of the marker, {column: [cell, ...]})`` in
        order of appearance.
    """
    lines = text.splitlines()
    tables = []
    for index, line in enumerate(lines):
        if marker not in line:
            continue
        rows: List[List[str]] = []
        borders = 0
        for row in lines[index + 1 :]:
            stripped = row.strip()
            if stripped.startswith("+"):
                borders += 1
                if borders == 3:
                    break
            elif stripped.startswith("|"):
                rows.append([cell.strip() for cell in stripped.strip("|").split("|")])
            elif borders:
                break
        if len(rows) >= 2:
            header, body = rows[0], rows[1:]
            columns = {
                name: [r[i] for r in body if len(r) == len(header)] for i, name in enumerate(header)
            }
            tables.append((index, columns))
    return tables


def _to_float(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan


def _log_evaluations(log: Path) -> List[dict]:
    """Every evaluation with an ``IoUMetric`` per-class table in one log, in order."""
    text = log.read_text(errors="replace")
    lines = text.splitlines()
    metric_lines = [i for i, text_line in enumerate(lines) if _MIOU.search(text_line)]
    prop_tables = parse_tables(text, PROP_MARKER)
    evaluations = []
    for line, table in parse_tables(text, IOU_MARKER):
        if "Class" not in table or "IoU" not in table:
            continue
        iou = [_to_float(c) for c in table["IoU"]]
        finite = [v for v in iou if not math.isnan(v)]
        after = [i for i in metric_lines if i > line]
        if after:
            miou = float(_MIOU.search(lines[after[0]]).group(1))
        else:  # no metric line (log cut short): the mean of the printed, rounded IoUs
            miou = sum(finite) / max(len(finite), 1)
        trained = [_TRAIN_ITER.search(x) for x in lines[:line]]
        trained = [m for m in trained if m]
        result = dict(
            classes=table["Class"],
            iou=iou,
            miou=miou,
            regprop=None,
            regprop_denominator=None,
            log=str(log),
            iteration=int(trained[-1].group(1)) if trained else None,
        )
        # the ProportionMetric table of the same evaluation: between the previous
        # evaluation's metric line and this one's (the order of the evaluators is free)
        start = max([i for i in metric_lines if i < line], default=-1)
        end = min([i for i in metric_lines if i > line], default=len(lines))
        for prop_line, prop_table in prop_tables:
            if start < prop_line < end and "RegProp" in prop_table:
                if prop_table["Class"] != table["Class"]:
                    raise ValueError(
                        f"{log}: the IoU and the region-proportion tables list different "
                        f"classes: {table['Class']} vs {prop_table['Class']}"
                    )
                result["regprop"] = [_to_float(c) for c in prop_table["RegProp"]]
                found = _DENOM.search(lines[prop_line])
                result["regprop_denominator"] = found.group(1) if found else None
        evaluations.append(result)
    return evaluations


def read_work_dir(work_dir: str, select: str = "last") -> dict:
    """Read one per-class evaluation of a work dir: the last one, or the best one.

    Args:
        work_dir (str): An mmseg work dir (holding ``<timestamp>/<timestamp>.log``).
        select (str): ``'last'``: the last evaluation of the newest log that has one (the
            final validation of a training run, or the evaluation of ``tools/test.py
            --work-dir``). ``'best'``: the evaluation with the highest mIoU over every log of
            the work dir (the first of equal ones), i.e. the validation of the checkpoint that
            mmengine's ``CheckpointHook(save_best='mIoU')`` keeps: for a run validated every
            epoch, the best epoch, which is model selection on the evaluated split.

    Returns:
        dict: ``classes`` (list), ``iou`` (list of floats, percent), ``miou`` (float),
        ``regprop`` (list or None), ``regprop_denominator`` (str or None), ``log`` (path),
        ``iteration`` (the last training iteration logged before the evaluation, or None),
        ``evaluations`` (how many evaluations ``select`` chose from).

    Raises:
        FileNotFoundError: if the work dir does not exist or none of its logs holds an
            ``IoUMetric`` per-class table.
        ValueError: if ``select`` is neither ``'last'`` nor ``'best'``, or the
            region-proportion table of an evaluation lists other classes than its IoU table.
    """
    if select not in ("last", "best"):
        raise ValueError(f"select must be 'last' or 'best', got {select!r}")
    root = Path(work_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"work dir not found: {work_dir}")
    logs = sorted(root.glob("*/*.log"), key=lambda p: (p.parent.name, p.name))
    candidates: List[dict] = []
    for log in reversed(logs):
        evaluations = _log_evaluations(log)
        if select == "last" and evaluations:
            candidates = evaluations
            break
        candidates = evaluations + candidates
    if candidates:
        if select == "last":
            chosen = candidates[-1]
        else:
            ranked = [
                (-math.inf if math.isnan(e["miou"]) else e["miou"], -i)
                for i, e in enumerate(candidates)
            ]
            chosen = candidates[-max(ranked)[1]]
        return dict(chosen, evaluations=len(candidates))
    raise FileNotFoundError(
        f"no evaluation results in work dir {work_dir}: no log <timestamp>/<timestamp>.log "
        f"with mmseg's per-class IoU table ('{IOU_MARKER}'); run a validation or "
        f"tools/test.py CONFIG CHECKPOINT --work-dir {work_dir}"
    )


def collect_results(
    work_dirs: Sequence[str],
    names: Optional[Sequence[str]] = None,
    regprop_config: Optional[str] = None,
    regprop_split: str = "val",
    cfg_options: Optional[dict] = None,
    select: str = "last",
) -> dict:
    """Read every work dir and check that they share a class list.

    Args:
        work_dirs (Sequence[str]): mmseg work dirs.
        names (Sequence[str], optional): Row names; default: the work dirs' folder names.
        regprop_config (str, optional): Dataset config to compute the mRegProp row from
            (denominator 'all'), instead of the runs' ``ProportionMetric`` tables.
        regprop_split (str): Split of ``regprop_config``. Default: 'val'.
        cfg_options (dict, optional): Overrides of ``regprop_config``.
        select (str): Which evaluation of each work dir, ``'last'`` or ``'best'`` (highest
            mIoU); see :func:`read_work_dir`.

    Returns:
        dict: ``classes``, ``rows`` (list of ``(name, iou list, miou)``), ``regprop`` (list or
        None), ``regprop_source`` (str), ``warnings`` (list of str), ``select`` (str),
        ``selected`` (per row: ``(log, training iteration or None, evaluations)``).

    Raises:
        ValueError: if ``names`` does not match ``work_dirs`` or two runs have different
            class lists (the message names the work dir and both lists), or the dataset of
            ``regprop_config`` has other classes.
        FileNotFoundError: from :func:`read_work_dir` and, for ``regprop_config``, from
            :func:`~mmseg_marginal.analysis.region_proportions.region_proportions`.
    """
    if not work_dirs:
        raise ValueError("give at least one work dir")
    if names is None:
        names = [Path(w).name for w in work_dirs]
    if len(names) != len(work_dirs):
        raise ValueError(f"{len(names)} names for {len(work_dirs)} work dirs")
    runs = [read_work_dir(w, select) for w in work_dirs]
    classes = runs[0]["classes"]
    for work_dir, run in zip(work_dirs[1:], runs[1:]):
        if run["classes"] != classes:
            raise ValueError(
                f"work dir {work_dir} was evaluated on other classes than {work_dirs[0]}: "
                f"{run['classes']} vs {classes}"
            )
    warnings: List[str] = []
    regprop, source = None, "none"
    if regprop_config is not None:
        result = region_proportions(regprop_config, regprop_split, ("all",), 255, cfg_options)
        if result["classes"] != classes:
            raise ValueError(
                f"{regprop_config} has other classes than the work dirs: "
                f"{result['classes']} vs {classes}"
            )
        regprop = [float(v) for v in result["stats"]["all"]["mregprop"]]
        source = f"{Path(regprop_config).name} ({regprop_split}, all pixels)"
    else:
        with_prop = [(w, r) for w, r in zip(work_dirs, runs) if r["regprop"] is not None]
        if with_prop:
            first_dir, first = with_prop[0]
            regprop = first["regprop"]
            source = f"ProportionMetric of {first_dir} ({first['regprop_denominator']} pixels)"
            for work_dir, run in with_prop[1:]:
                diff = max(abs(a - b) for a, b in zip(run["regprop"], regprop))
                if diff > 0.011:
                    warnings.append(
                        f"the RegProp of {work_dir} differs from {first_dir} by up to "
                        f"{diff:.2f} points (other evaluation data or denominator)"
                    )
        else:
            warnings.append(
                "no mRegProp row: no work dir has a ProportionMetric table; add "
                "dict(type='ProportionMetric', denominator='all') to the evaluator or pass "
                "--regprop-config"
            )
    rows = [(name, run["iou"], run["miou"]) for name, run in zip(names, runs)]
    return dict(
        classes=classes,
        rows=rows,
        regprop=regprop,
        regprop_source=source,
        warnings=warnings,
        select=select,
        selected=[(r["log"], r["iteration"], r["evaluations"]) for r in runs],
    )


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


def format_markdown(results: dict) -> str:
    """The table in markdown: mRegProp row, then one row per run; classes then mIoU.

    Args:
        results (dict): The output of :func:`collect_results`.

    Returns:
        str: The table (values with one decimal, ``nan`` for a class without IoU) and a note
        on which evaluation was read and where mRegProp comes from, ending with a newline.
    """
    header = ["Method"] + list(results["classes"]) + ["mIoU"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    if results["regprop"] is not None:
        cells = ["mRegProp"] + [_fmt(v) for v in results["regprop"]] + ["-"]
        lines.append("| " + " | ".join(cells) + " |")
    for name, iou, miou in results["rows"]:
        lines.append("| " + " | ".join([name] + [_fmt(v) for v in iou] + [_fmt(miou)]) + " |")
    note = "IoU (%) per class"
    if results.get("select") == "best":
        note += (
            " of each work dir's best evaluation (highest mIoU: the best validation epoch, "
            "model selection on the evaluated split)"
        )
    else:
        note += " of each work dir's last evaluation"
    if results["regprop"] is not None:
        note += f"; mRegProp (%) from {results['regprop_source']}"
    lines += ["", note + "."]
    return "\n".join(lines) + "\n"


def plot_table(results: dict, out: str) -> Path:
    """Draw the table as a figure: IoU cells coloured by value, the mRegProp row in grey.

    Args:
        results (dict): The output of :func:`collect_results`.
        out (str): Path of the image to write (its folder is created).

    Returns:
        Path: The written file.

    Raises:
        MissingExtraError: if matplotlib is not installed (the ``analysis`` extra).
    """
    matplotlib = require_extra("matplotlib", "the results table figure")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    classes = list(results["classes"]) + ["mIoU"]
    row_names, cells, colours = [], [], []
    cmap = plt.get_cmap("viridis")
    if results["regprop"] is not None:
        row_names.append("mRegProp")
        cells.append([_fmt(v) for v in results["regprop"]] + ["-"])
        colours.append(["#dddddd"] * len(classes))
    for name, iou, miou in results["rows"]:
        values = list(iou) + [miou]
        row_names.append(name)
        cells.append([_fmt(v) for v in values])
        colours.append(["white" if math.isnan(v) else cmap(0.25 + 0.75 * v / 100) for v in values])
    col_width = max(4, max(len(c) for c in classes)) * 0.09
    width = col_width * (len(classes) + 1.5)
    height = 0.5 + 0.28 * (len(row_names) + 1)
    fig, ax = plt.subplots(figsize=(width, height), dpi=120)
    ax.axis("off")
    table = ax.table(
        cellText=cells,
        cellColours=colours,
        rowLabels=row_names,
        colLabels=classes,
        loc="center",
        cellLoc="center",
        colWidths=[1.0 / (len(classes) + 1.5)] * len(classes),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.4)
    for (row, _), cell in table.get_celld().items():
        if row > 0:
            rgba = np.asarray(matplotlib.colors.to_rgba(cell.get_facecolor()))
            if rgba[:3].mean() < 0.45:
                cell.get_text().set_color("white")
    ax.set_title("IoU (%) per class under the mean region proportion (%)", fontsize=9)
    fig.tight_layout()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, bbox_inches="tight")
    plt.close(fig)
    return out_path
