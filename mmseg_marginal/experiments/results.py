"""Reading, aggregating, tabulating and plotting the result JSONs of a comparison.

Multi-class results (``IoU`` per class) give ``summary.md`` (per-class IoU, mIoU, small-class
mIoU, proportion error and predicted proportions) and ``per_class.png``; binary results (a
``BoundaryMetric``: DSC and HD-95 of the foreground) give ``summary.md`` in the layout of the
paper's Table 2 and ``scatter.png`` (per image, ground-truth vs predicted foreground share); a λ
sweep gives ``lambda_sweep.md`` and ``lambda_sweep.png``. Values are means and sample standard
deviations over seeds.

Each ``summary.md`` also compares every loss with a reference loss (by default the first loss
of the comparison): the difference of the means, its 95 % Welch t interval and Welch's
two-sided p over seeds (:mod:`.stats`); a binary summary adds the one-sample t interval of the
predicted minus the ground-truth foreground share.
"""

from __future__ import annotations

import dataclasses
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .plan import RunSpec
from .stats import format_difference, t_interval, welch_difference

MeanStd = Tuple[Optional[float], Optional[float]]


def load_results(out_dir: str, runs: Sequence[RunSpec]) -> List[Dict[str, Any]]:
    """The result dicts of the runs that have one in ``out_dir`` (in run order).

    Each gets ``_spec``: the planned
    :class:`~mmseg_marginal.experiments.plan.RunSpec`, labelled as when it ran.
    """
    results = []
    for spec in runs:
        path = osp.join(out_dir, f"{spec.name}.json")
        if osp.isfile(path):
            with open(path) as f:
                result = json.load(f)
            label = result.get("spec", {}).get("label", spec.label)
            result["_spec"] = dataclasses.replace(spec, label=label)
            results.append(result)
    return results


def is_binary(result: Dict[str, Any]) -> bool:
    """Whether a result holds the binary foreground metrics (``BoundaryMetric``)."""
    return "binary" in result


def small_class_names(
    result: Dict[str, Any], override: Optional[Sequence[str]] = None
) -> List[str]:
    """Classes of the "small classes" column: given, from the config, or 4 smallest GT."""
    classes = result["classes"]
    names = list(override or result.get("small_classes") or [])
    if not names:
        share = result["per_class"]["RegProp"]
        names = sorted(classes, key=lambda c: share[c])[:4]
    unknown = [c for c in names if c not in classes]
    if unknown:
        raise ValueError(f"small classes {unknown} are not classes of the dataset {classes}")
    return names


def mean_std(values: Sequence[Optional[float]]) -> MeanStd:
    """Mean and sample standard deviation of the values that are not None (std: None for one
    value; both None for none)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    std = (sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else None
    return mean, std


def format_mean_std(mean: Optional[float], std: Optional[float], digits: int = 1) -> str:
    """``mean ± std`` with ``digits`` decimals; ``–`` without a value, no ± without a std."""
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _small_miou(result: Dict[str, Any], names: Sequence[str]) -> Optional[float]:
    """Mean IoU of the classes ``names`` of one result (those with an IoU); None if none."""
    vals = [result["per_class"]["IoU"][c] for c in names]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _groups(results: Sequence[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["_spec"].group, []).append(r)
    return groups


def _group_row(group: str, members: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The fields every aggregated row has: name, label, spec, seeds, training time."""
    return dict(
        group=group,
        label=members[0]["_spec"].label,
        spec=members[0]["_spec"],
        seeds=[m["seed"] for m in members],
        # a resumed run's train_time_s covers only its last part: not averaged
        train_time_s=mean_std([m["train_time_s"] for m in members if not m.get("resumed", False)]),
    )


def aggregate(
    results: Sequence[Dict[str, Any]], small: Optional[Sequence[str]] = None
) -> List[Dict[str, Any]]:
    """Group multi-class results by loss setting; per-class mean and std over seeds.

    Returns:
        list[dict]: one row per loss setting (in run order) with ``group``, ``label``,
        ``seeds``, ``iou``/``prop_mae``/``pred_prop``: {class: (mean, std)}, ``miou``,
        ``small_miou``, ``mprop_mae``: (mean, std), ``small_classes`` and ``per_seed``: the
        values per seed of ``miou``, ``small_miou``, ``mprop_mae`` and ``iou.<class>``.
    """
    rows = []
    for group, members in _groups(results).items():
        classes = members[0]["classes"]
        small_names = small_class_names(members[0], small)

        def per_class(
            key: str, members: List[Dict[str, Any]] = members, classes: List[str] = classes
        ) -> Dict[str, MeanStd]:
            return {c: mean_std([m["per_class"][key][c] for m in members]) for c in classes}

        small_vals = [_small_miou(m, small_names) for m in members]
        per_seed: Dict[str, List[Optional[float]]] = dict(
            miou=[m["mIoU"] for m in members],
            small_miou=small_vals,
            mprop_mae=[m["mPropMAE"] for m in members],
        )
        for c in classes:
            per_seed[f"iou.{c}"] = [m["per_class"]["IoU"][c] for m in members]
        rows.append(
            dict(
                _group_row(group, members),
                classes=classes,
                small_classes=small_names,
                iou=per_class("IoU"),
                prop_mae=per_class("PropMAE"),
                pred_prop=per_class("PredProp"),
                gt_prop=per_class("RegProp"),
                miou=mean_std([m["mIoU"] for m in members]),
                small_miou=mean_std(small_vals),
                mprop_mae=mean_std([m["mPropMAE"] for m in members]),
                per_seed=per_seed,
            )
        )
    return rows


def share_error(result: Dict[str, Any]) -> Optional[float]:
    """Mean over images of ``|predicted - GT foreground share|``, in percent (binary results)."""
    images = result.get("per_image") or []
    if not images:
        return None
    return 100 * sum(abs(r["pred_share"] - r["gt_share"]) for r in images) / len(images)


def aggregate_binary(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Group binary results by loss setting: DSC, HD-95 and foreground shares over seeds.

    Returns:
        list[dict]: one row per loss setting (in run order) with ``group``, ``label``,
        ``spec``, ``seeds``, (mean, std) over seeds of ``dsc``, ``hd95``, ``gt_share``,
        ``pred_share``, ``share_error`` and ``train_time_s``, and ``per_seed``: the values
        per seed of ``dsc``, ``hd95``, ``gt_share``, ``pred_share`` and ``share_error``.
    """
    rows = []
    for group, members in _groups(results).items():
        per_seed: Dict[str, List[Optional[float]]] = dict(
            dsc=[m["binary"]["DSC"] for m in members],
            hd95=[m["binary"]["HD95"] for m in members],
            gt_share=[m["binary"]["GTShare"] for m in members],
            pred_share=[m["binary"]["PredShare"] for m in members],
            share_error=[share_error(m) for m in members],
        )
        rows.append(
            dict(
                _group_row(group, members),
                **{key: mean_std(vals) for key, vals in per_seed.items()},
                per_seed=per_seed,
            )
        )
    return rows


def _train_minutes(row: Dict[str, Any]) -> str:
    mean = row["train_time_s"][0]
    return "not measured (resumed)" if mean is None else f"{mean / 60:.0f} min"


def _protocol_lines(
    results: Sequence[Dict[str, Any]], runs: Sequence[RunSpec], rows: Sequence[Dict[str, Any]]
) -> List[str]:
    first = results[0]
    hw = sorted(
        {
            f"{r['hardware']['cpu']} ({r['hardware']['cpu_count']} cores), "
            f"device {r['hardware']['device']}"
            for r in results
        }
    )
    seeds = sorted({r["seed"] for r in results})
    iters = sorted({r["iters"] for r in results})
    done = {r["run"] for r in results}
    pending = [s.name for s in runs if s.name not in done]
    resumed = [r["run"] for r in results if r.get("resumed", False)]
    return [
        f"Config `{first['config']}` (dataset {first['dataset']}, data root "
        f"`{first['data_root']}`), loss replaced per run, nothing else changed.",
        f"Iterations: {', '.join(map(str, iters))}; batch {first['train_batch_size']}; "
        f"training crop {first['crop_size']}; seeds {seeds}; evaluated on "
        f"{first['num_images']} images of the test split of the config.",
        f"Hardware: {'; '.join(hw)}. Mean training time per run: "
        + ", ".join(f"{row['group']} {_train_minutes(row)}" for row in rows)
        + "."
        + (
            f" Resumed from a checkpoint (time of the last part only, not averaged): "
            f"{', '.join(resumed)}."
            if resumed
            else ""
        ),
        _commit_line(results),
        f"Finished runs: {len(results)} of {len(runs)} planned"
        + (f" (pending: {', '.join(pending)})." if pending else "."),
    ]


def _commit_line(results: Sequence[Dict[str, Any]]) -> str:
    """Which commit of the code produced the results (``commit`` of each JSON), with counts."""
    counts: Dict[str, int] = {}
    for r in results:
        commit = r.get("commit")
        if commit:
            key = f"`{commit[:12]}`" + (
                " with uncommitted changes" if r.get("uncommitted_changes") else ""
            )
        else:
            key = "not recorded"
        counts[key] = counts.get(key, 0) + 1
    keys = sorted(counts, key=lambda k: (k == "not recorded", k))
    return (
        "Code commit: "
        + "; ".join(f"{k} ({counts[k]} run{'' if counts[k] == 1 else 's'})" for k in keys)
        + "."
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def reference_row(
    rows: Sequence[Dict[str, Any]], runs: Sequence[RunSpec], reference: Optional[str] = None
) -> Tuple[str, Optional[Dict[str, Any]]]:
    """The reference loss of the difference tables and its aggregated row (None: not finished).

    Args:
        rows: from :func:`aggregate` or :func:`aggregate_binary`.
        runs: the planned runs.
        reference: a loss setting of the comparison (its ``group``: the loss name, or
            ``<loss>_lam<λ>``); default the group of the first planned run, i.e. the first loss
            of the comparison.

    Raises:
        ValueError: ``reference`` is not one of the compared loss settings.
    """
    known = list(dict.fromkeys([s.group for s in runs] + [r["group"] for r in rows]))
    name = reference if reference is not None else known[0]
    if name not in known:
        raise ValueError(f"reference loss '{name}' is not one of the compared losses {known}")
    return name, next((r for r in rows if r["group"] == name), None)


def _finite(values: Sequence[Optional[float]]) -> List[float]:
    return [v for v in values if v is not None]


def _difference_lines(
    rows: Sequence[Dict[str, Any]],
    ref_name: str,
    ref_row: Optional[Dict[str, Any]],
    metrics: Sequence[Tuple[str, str, int]],
    title: str,
    extra: Optional[Tuple[str, Any]] = None,
) -> List[str]:
    """A table of each row's Welch difference to the reference row, per metric.

    ``metrics``: (``per_seed`` key, column head, decimals); ``extra``: (column head, function
    of a row giving its cell), a column filled for every row, the reference's included.
    """
    if ref_row is None:
        return [f"**{title}**: the reference loss `{ref_name}` has no finished run yet.", ""]
    if _one_seed_each(rows):
        return []
    head = ["loss", "seeds"] + [h for _, h, _ in metrics] + ([extra[0]] if extra else [])
    body = []
    for row in rows:
        if row is ref_row:
            cells = ["reference"] * len(metrics)
        else:
            cells = [
                format_difference(
                    welch_difference(
                        _finite(row["per_seed"][key]), _finite(ref_row["per_seed"][key])
                    ),
                    digits,
                )
                for key, _, digits in metrics
            ]
        if extra:
            cells.append(extra[1](row))
        body.append([row["label"], str(len(row["seeds"]))] + cells)
    return [f"**{title}**", ""] + _table(head, body) + [""]


def _one_seed_each(rows: Sequence[Dict[str, Any]]) -> bool:
    return all(len(r["seeds"]) < 2 for r in rows)


def _difference_note(
    rows: Sequence[Dict[str, Any]], ref_name: str, ref_row: Optional[Dict[str, Any]]
) -> List[str]:
    if ref_row is None:
        return []
    if _one_seed_each(rows):
        return [
            f"No difference to the reference {ref_row['label']} (`{ref_name}`) is tabulated: "
            "one seed per loss gives no interval or p-value (two seeds or more per loss are "
            "needed).",
            "",
        ]
    return [
        f"Differences: each loss minus the reference {ref_row['label']} (`{ref_name}`), as the "
        "difference of the means over seeds [95 % Welch t interval], Welch's two-sided p "
        "(unequal variances; degrees of freedom by Welch-Satterthwaite); – where either side "
        "has fewer than two seeds or neither varies. The interval covers seed-to-seed "
        "variation of this protocol only; each p is for one comparison, not corrected for the "
        "number of comparisons in the table.",
        "",
    ]


def summary_markdown(
    results: Sequence[Dict[str, Any]],
    runs: Sequence[RunSpec],
    small: Optional[Sequence[str]] = None,
    reference: Optional[str] = None,
) -> str:
    """Markdown tables of a multi-class comparison (IoU, proportions) with its protocol.

    With the differences of mIoU, small-class mIoU, mean proportion MAE and per-class IoU to
    the ``reference`` loss (:func:`reference_row`).

    Raises:
        ValueError: ``reference`` is not one of the compared losses.
    """
    if not results:
        return "No finished run yet.\n"
    if is_binary(results[0]):
        return binary_summary_markdown(results, runs, reference)
    rows = aggregate(results, small)
    ref_name, ref_row = reference_row(rows, runs, reference)
    classes = results[0]["classes"]
    fmt = format_mean_std
    lines = _protocol_lines(results, runs, rows)
    lines += [
        "Values are mean ± sample std over seeds (no ± with one seed), in percent.",
        "",
        "**IoU per class (%)**",
        "",
    ]
    small_names = rows[0]["small_classes"]
    head = ["loss", "seeds"] + classes + ["mIoU", f"small-4 mIoU ({', '.join(small_names)})"]
    lines += _table(
        head,
        [
            [row["label"], str(len(row["seeds"]))]
            + [fmt(*row["iou"][c]) for c in classes]
            + [fmt(*row["miou"]), fmt(*row["small_miou"])]
            for row in rows
        ],
    )
    lines += [""] + _difference_note(rows, ref_name, ref_row)
    lines += _difference_lines(
        rows,
        ref_name,
        ref_row,
        [
            ("miou", "mIoU (points)", 1),
            ("small_miou", "small-4 mIoU (points)", 1),
            ("mprop_mae", "mean prop. MAE (points)", 2),
        ],
        "Difference to the reference",
    )
    lines += _difference_lines(
        rows,
        ref_name,
        ref_row,
        [(f"iou.{c}", c, 1) for c in classes],
        "IoU difference to the reference per class (points)",
    )
    lines += ["**Mean absolute error between predicted and GT proportion per class (%)**", ""]
    lines += _table(
        ["loss"] + classes + ["mean"],
        [
            [row["label"]] + [fmt(*row["prop_mae"][c]) for c in classes] + [fmt(*row["mprop_mae"])]
            for row in rows
        ],
    )
    lines += ["", "**Mean predicted proportion per class (%), GT first**", ""]
    gt_row = ["GT"] + [fmt(rows[0]["gt_prop"][c][0], None) for c in classes]
    lines += _table(
        ["loss"] + classes,
        [gt_row] + [[row["label"]] + [fmt(*row["pred_prop"][c]) for c in classes] for row in rows],
    )
    return "\n".join(lines) + "\n"


def _share_offset(row: Dict[str, Any]) -> str:
    """One-sample t interval of predicted minus ground-truth share over a row's seeds."""
    pairs = zip(row["per_seed"]["pred_share"], row["per_seed"]["gt_share"])
    return format_difference(
        t_interval([p - g for p, g in pairs if p is not None and g is not None]), 2
    )


def binary_summary_markdown(
    results: Sequence[Dict[str, Any]], runs: Sequence[RunSpec], reference: Optional[str] = None
) -> str:
    """Markdown table of a binary comparison in the layout of the paper's Table 2.

    Per loss: DSC (%) and HD-95 (pixels) of the foreground, mean over the test images, then
    mean ± sample std over seeds; the ground-truth and predicted foreground share and the mean
    per-image ``|predicted - GT|`` share (%). Then the differences to the ``reference`` loss
    (:func:`reference_row`) and, per loss, the one-sample t interval of predicted minus
    ground-truth share.

    Raises:
        ValueError: ``reference`` is not one of the compared losses.
    """
    if not results:
        return "No finished run yet.\n"
    rows = aggregate_binary(results)
    ref_name, ref_row = reference_row(rows, runs, reference)
    lines = _protocol_lines(results, runs, rows)
    lines += [
        "DSC and HD-95 of the foreground per test image, averaged over the images; then mean ± "
        "sample std over seeds (no ± with one seed). Shares: percent of the valid pixels.",
        "",
    ]
    lines += _table(
        [
            "loss",
            "seeds",
            "DSC (%)",
            "HD-95 (px)",
            "GT share (%)",
            "predicted share (%)",
            "per-image abs(pred - GT) share (%)",
        ],
        [
            [
                row["label"],
                str(len(row["seeds"])),
                format_mean_std(*row["dsc"]),
                format_mean_std(*row["hd95"]),
                format_mean_std(row["gt_share"][0], None, 2),
                format_mean_std(*row["pred_share"], digits=2),
                format_mean_std(*row["share_error"], digits=2),
            ]
            for row in rows
        ],
    )
    lines += [""] + _difference_note(rows, ref_name, ref_row)
    if ref_row is not None and not _one_seed_each(rows):
        lines += [
            "Last column: predicted minus ground-truth share, mean over seeds [95 % one-sample "
            "t interval], two-sided p of a zero offset.",
            "",
        ]
    lines += _difference_lines(
        rows,
        ref_name,
        ref_row,
        [
            ("dsc", "DSC (points)", 1),
            ("hd95", "HD-95 (px)", 1),
            ("pred_share", "predicted share (points)", 2),
            ("share_error", "per-image abs(pred - GT) share (points)", 2),
        ],
        "Difference to the reference",
        ("predicted - GT share (points)", _share_offset),
    )
    return "\n".join(lines).rstrip("\n") + "\n"


def sweep_rows(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows of a λ sweep: ``loss``, ``weight`` (λ) and the metrics' (mean, std) over seeds,
    sorted by loss (in run order) and λ. Losses without a λ are left out."""
    binary = is_binary(results[0])
    rows = aggregate_binary(results) if binary else aggregate(results)
    out = []
    for row in rows:
        weight = row["spec"].marginal_weight
        weight = row["spec"].weight if weight is None else weight
        if weight is None:
            continue
        out.append(dict(row, loss=row["spec"].loss, weight=weight))
    order = {loss: i for i, loss in enumerate(dict.fromkeys(r["loss"] for r in out))}
    return sorted(out, key=lambda r: (order[r["loss"]], r["weight"]))


def sweep_markdown(results: Sequence[Dict[str, Any]], runs: Sequence[RunSpec]) -> str:
    """Markdown table of a λ sweep (one row per loss and λ)."""
    if not results:
        return "No finished run yet.\n"
    rows = sweep_rows(results)
    binary = is_binary(results[0])
    lines = _protocol_lines(results, runs, rows) + [
        "Every λ is scored on the split the comparison evaluates on (the config's test split; "
        "the runs have no validation split), so a λ picked from this table is selected on "
        "that split.",
        "",
    ]
    if binary:
        head = ["loss", "λ", "seeds", "DSC (%)", "HD-95 (px)", "predicted share (%)"]
        body = [
            [r["loss"], f"{r['weight']:g}", str(len(r["seeds"]))]
            + [format_mean_std(*r["dsc"]), format_mean_std(*r["hd95"])]
            + [format_mean_std(*r["pred_share"], digits=2)]
            for r in rows
        ]
        gt = format_mean_std(rows[0]["gt_share"][0] if rows else None, None, 2)
        lines.append(f"Ground-truth foreground share: {gt} %.")
        lines.append("")
    else:
        head = ["loss", "λ", "seeds", "mIoU (%)", "small-4 mIoU (%)", "mean prop. MAE (%)"]
        body = [
            [r["loss"], f"{r['weight']:g}", str(len(r["seeds"]))]
            + [format_mean_std(*r["miou"]), format_mean_std(*r["small_miou"])]
            + [format_mean_std(*r["mprop_mae"], digits=2)]
            for r in rows
        ]
    if rows and all(len(r["seeds"]) < 2 for r in rows):
        lines += [
            "One seed per setting: no standard deviation, interval or p-value can be computed "
            "(two seeds or more per setting are needed); the seed-to-seed spread of a setting "
            "is in the main comparison's summary.",
            "",
        ]
    return "\n".join(lines + _table(head, body)) + "\n"


def _pyplot() -> Any:
    from mmseg_marginal.extras import require_extra

    matplotlib = require_extra("matplotlib", "the plots of compare_losses")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


MARKERS = ("o", "s", "^", "D", "v")


def loss_style(i: int) -> Tuple[str, str]:
    """Colour and marker of the ``i``-th loss of a plot: matplotlib's ten cycle colours, then
    the same colours with the next marker, so that up to 50 losses look different."""
    return f"C{i % 10}", MARKERS[(i // 10) % len(MARKERS)]


def plot_summary(
    results: Sequence[Dict[str, Any]], path: str, small: Optional[Sequence[str]] = None
) -> None:
    """Grouped bars of per-class IoU and proportion MAE per loss (std over seeds)."""
    plt = _pyplot()
    import numpy as np

    rows = aggregate(results, small)
    classes = rows[0]["classes"]
    x = np.arange(len(classes))
    width = 0.8 / len(rows)
    fig, axes = plt.subplots(2, 1, figsize=(max(8, len(classes) * 0.9), 7), sharex=True)
    for ax, key, title in (
        (axes[0], "iou", "IoU (%)"),
        (axes[1], "prop_mae", "|predicted - GT proportion| (%)"),
    ):
        for i, row in enumerate(rows):
            means = [row[key][c][0] or 0.0 for c in classes]
            stds = [row[key][c][1] or 0.0 for c in classes]
            offset = (i - (len(rows) - 1) / 2) * width
            ax.bar(x + offset, means, width, yerr=stds, label=row["label"])
        ax.set_ylabel(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    axes[1].set_xticks(x, classes, rotation=30, ha="right")
    iters = sorted({r["iters"] for r in results})
    seeds = sorted({r["seed"] for r in results})
    fig.suptitle(
        f"{results[0]['dataset']}: {', '.join(map(str, iters))} iterations, "
        f"seeds {', '.join(map(str, seeds))}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_share_scatter(results: Sequence[Dict[str, Any]], path: str) -> None:
    """Per test image: ground-truth vs predicted foreground share, one colour per loss.

    The predicted share of an image is its mean over the seeds of the loss; the diagonal is a
    prediction with the true share.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    values: List[float] = []
    for i, members in enumerate(_groups(results).values()):
        by_image: Dict[str, List[Tuple[float, float]]] = {}
        for m in members:
            for rec in m.get("per_image") or []:
                by_image.setdefault(str(rec.get("img_path")), []).append(
                    (rec["gt_share"], rec["pred_share"])
                )
        gt = [100 * v[0][0] for v in by_image.values()]
        pred = [100 * sum(p for _, p in v) / len(v) for v in by_image.values()]
        values += gt + pred
        colour, marker = loss_style(i)
        ax.scatter(gt, pred, s=18, color=colour, marker=marker, label=members[0]["_spec"].label)
    if values:  # the diagonal (predicted share = true share) over the range of the points
        margin = 0.05 * (max(values) - min(values)) + 0.1
        ends = [max(0.0, min(values) - margin), max(values) + margin]
        ax.plot(ends, ends, color="k", lw=0.8)
        ax.set_xlim(*ends)
        ax.set_ylim(*ends)
    ax.set_xlabel("ground-truth foreground share of the image (%)")
    ax.set_ylabel("predicted foreground share (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    seeds = sorted({r["seed"] for r in results})
    ax.set_title(
        f"{results[0]['dataset']}: per test image, mean over the seeds of each loss (of {seeds})",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_lambda_sweep(results: Sequence[Dict[str, Any]], path: str) -> None:
    """The metrics of a λ sweep against λ (log axis), one line per loss."""
    plt = _pyplot()
    rows = sweep_rows(results)
    binary = is_binary(results[0])
    keys = (("dsc", "DSC (%)"), ("hd95", "HD-95 (px)")) if binary else (("miou", "mIoU (%)"),)
    keys += (("pred_share", "predicted share (%)"),) if binary else (("mprop_mae", "prop. MAE"),)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.8))
    for ax, (key, title) in zip(axes, keys):
        for i, loss in enumerate(dict.fromkeys(r["loss"] for r in rows)):
            mine = [r for r in rows if r["loss"] == loss]
            colour, marker = loss_style(i)
            ax.errorbar(
                [r["weight"] for r in mine],
                [r[key][0] for r in mine],
                yerr=[r[key][1] or 0.0 for r in mine],
                marker=marker,
                color=colour,
                label=loss,
            )
        if binary and key == "pred_share" and rows:  # the GT share is every row's
            ax.axhline(rows[0]["gt_share"][0], color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_summary(
    out_dir: str,
    runs: Sequence[RunSpec],
    small: Optional[Sequence[str]] = None,
    *,
    sweep: bool = False,
    reference: Optional[str] = None,
) -> Optional[str]:
    """Write the tables and the plot of the finished runs of ``runs``; return the markdown.

    Files in ``out_dir``: ``summary.md`` with ``per_class.png`` (multi-class) or
    ``scatter.png`` (binary); with ``sweep``, ``lambda_sweep.md`` and ``lambda_sweep.png``.
    ``reference``: the loss the summary's differences are taken to (:func:`reference_row`;
    default the first loss of ``runs``).

    Raises:
        ValueError: ``reference`` is not one of the losses of ``runs``.
    """
    results = load_results(out_dir, runs)
    if not results:
        return None
    if sweep:
        text = sweep_markdown(results, runs)
        name, plot = "lambda_sweep", plot_lambda_sweep
    elif is_binary(results[0]):
        text = binary_summary_markdown(results, runs, reference)
        name, plot = "summary", plot_share_scatter
    else:
        text = summary_markdown(results, runs, small, reference)
        name, plot = "summary", None
    with open(osp.join(out_dir, f"{name}.md"), "w") as f:
        f.write(text)
    if plot is None:
        plot_summary(results, osp.join(out_dir, "per_class.png"), small)
    else:
        plot(results, osp.join(out_dir, f"{name if sweep else 'scatter'}.png"))
    return text
