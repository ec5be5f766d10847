"""Benchmark the losses: forward + backward time (and peak memory) against mmseg's own losses.

Two tables, every row of a table measured in the same run, the timed steps interleaved (so
that changes of the machine's load hit every row alike):

* the default (no ``--height``/``--width``): the **size table**, one row per input size
  (:data:`SIZES`, or those of ``--sizes``), columns mmseg's
  ``CrossEntropyLoss(avg_non_ignore=True)`` (for the binary sizes its ``use_sigmoid=True``
  BCE), ``CEMarginalLoss('l1')`` on its default path (``compile='auto'``) and on the eager
  kernels (``compile=False``), the columns of a row taking turns at running first; min and
  median time, and the ratios of the minima to mmseg's loss. At one thread unless
  ``--threads`` says otherwise. The sizes are interleaved in each repeat, or, with
  ``--per-size``, each size runs all its repeats before the next.
  On the CPU the minimum is taken of the process CPU time (``time.process_time``), which does
  not count the time the process waits while other processes use its core; the median of the
  wall-clock time is printed beside it.
  CUDA rows follow when a GPU is present;
* with ``--height`` and ``--width``: the **loss table** of one input size, one row per loss
  (:func:`build_rows`) with the peak extra memory of one step.

Examples::

    python tools/benchmark_losses.py --repeats 9
    python tools/benchmark_losses.py --sizes 2x19x4x4 8x1x64x64 --repeats 25 --per-size
    python tools/benchmark_losses.py --batch 2 --classes 19 --height 512 --width 1024 \\
        --repeats 10 --device cpu

Measuring: time is the min (and median) over ``repeats`` timed forward + backward steps after
``warmup`` untimed ones (the first warmup compiles the kernels of ``CEMarginalLoss``). Peak
extra memory (:func:`peak_extra_bytes`): on CPU the peak resident set size during one forward +
backward minus the resident size just before it (``/proc/self/clear_refs`` resets the peak;
:func:`pin_malloc`, called for the loss table only, makes freed tensors go back to the OS);
on CUDA
``torch.cuda.max_memory_allocated`` minus the allocated memory before the step. It includes the
gradient of the logits.
"""

import argparse
import ctypes
import gc
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss, DiceLoss
from torch import Tensor

from mmseg_marginal.losses import (
    CEMarginalLoss,
    ClasswiseDiceLoss,
    GeneralizedDiceLoss,
    LabelMarginalLoss,
    SoftmaxFocalLoss,
)

#: The ignored label of the benchmark's inputs.
IGNORE = 255
#: A benchmarked loss: ``fn(logits, label) -> scalar``.
LossFn = Callable[[Tensor, Tensor], Tensor]
#: Name of the row all ratios refer to (first row of :func:`build_rows`).
BASELINE = "mmseg CrossEntropyLoss (avg_non_ignore)"


def onehot_reference_ce_l1(tau: float = 10.0) -> LossFn:
    """Straightforward CE + L1 marginal: one-hot labels, masks by elementwise products.

    Args:
        tau (float): Temperature of the predicted proportions. Default: 10.0.

    Returns:
        callable: ``fn(logits (B, K, H, W), label (B, H, W)) -> scalar``, ignoring
        :data:`IGNORE`; equal to ``CEMarginalLoss('l1', temperature=tau)``.
    """

    def fn(z: Tensor, label: Tensor) -> Tensor:
        k = z.shape[1]
        valid = (label != IGNORE).to(z.dtype)
        onehot = F.one_hot(label.clamp(max=k - 1) * (label != IGNORE), k)
        onehot = onehot.permute(0, 3, 1, 2).to(z.dtype) * valid.unsqueeze(1)
        ce = -(onehot * F.log_softmax(z, 1)).sum() / valid.sum()
        n = valid.sum((1, 2)).unsqueeze(1)
        s = F.softmax(tau * z, 1) * valid.unsqueeze(1)
        p_hat = (s.sum((2, 3)) + 1e-10) / (n + 1e-10)
        y_hat = (onehot.sum((2, 3)) + 1e-10) / (n + 1e-10)
        return ce + (y_hat - p_hat).abs().mean()

    return fn


def build_rows() -> List[Tuple[str, LossFn]]:
    """The benchmarked rows, :data:`BASELINE` first: ``(name, fn(logits, label) -> scalar)``."""
    mm_ce = CrossEntropyLoss(avg_non_ignore=True)
    mm_dice = DiceLoss(use_sigmoid=False, activate=True, ignore_index=IGNORE)
    marginal = LabelMarginalLoss("l1", temperature=10.0)
    ours_l1 = CEMarginalLoss("l1", marginal_weight=1.0, temperature=10.0)
    ours_kl = CEMarginalLoss("kl", marginal_weight=0.1, temperature=10.0)
    ours_eager = CEMarginalLoss("l1", marginal_weight=1.0, temperature=10.0, compile=False)
    dice_lin, dice_log = ClasswiseDiceLoss(), ClasswiseDiceLoss(log=True)
    gdice, focal = GeneralizedDiceLoss(), SoftmaxFocalLoss(gamma=2.0)

    def ce(z: Tensor, y: Tensor) -> Tensor:
        return mm_ce(z, y, ignore_index=IGNORE)

    return [
        (BASELINE, ce),
        ("F.cross_entropy", lambda z, y: F.cross_entropy(z, y, ignore_index=IGNORE)),
        ("CEMarginalLoss L1 tau=10 (fused)", lambda z, y: ours_l1(z, y, ignore_index=IGNORE)),
        ("CEMarginalLoss KL lambda=0.1 (fused)", lambda z, y: ours_kl(z, y, ignore_index=IGNORE)),
        (
            "CEMarginalLoss L1 eager kernels (compile=False)",
            lambda z, y: ours_eager(z, y, ignore_index=IGNORE),
        ),
        (
            "CE + LabelMarginalLoss L1 (loss list, two modules)",
            lambda z, y: ce(z, y) + marginal(z, y, ignore_index=IGNORE),
        ),
        ("one-hot reference CE + L1", onehot_reference_ce_l1()),
        ("CE + 0.1 ClasswiseDiceLoss linear", lambda z, y: ce(z, y) + 0.1 * dice_lin(z, y)),
        ("CE + 0.1 ClasswiseDiceLoss log", lambda z, y: ce(z, y) + 0.1 * dice_log(z, y)),
        ("ClasswiseDiceLoss linear alone", lambda z, y: dice_lin(z, y)),
        ("GeneralizedDiceLoss alone", lambda z, y: gdice(z, y)),
        ("SoftmaxFocalLoss gamma=2", lambda z, y: focal(z, y)),
        ("mmseg DiceLoss (reference, not ignore-correct)", lambda z, y: mm_dice(z, y)),
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_time(fn: LossFn, z: Tensor, label: Tensor) -> float:
    """Seconds of one forward + backward of ``fn`` on the leaf logits ``z``."""
    return step_times(fn, z, label)[0]


def step_times(fn: LossFn, z: Tensor, label: Tensor) -> Tuple[float, float]:
    """Wall-clock and process CPU seconds of one forward + backward of ``fn`` on the leaf
    logits ``z``. The CPU time does not count the time the process waits while other processes
    run on its core (on CUDA it is the host's time only)."""
    z.grad = None
    _sync(z.device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn(z, label).backward()
    _sync(z.device)
    return time.perf_counter() - t0, time.process_time() - c0


def _proc_status() -> Dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) * 1024
    return out


def peak_extra_bytes(fn: LossFn, z: Tensor, label: Tensor) -> Optional[int]:
    """Peak memory of one forward + backward above the memory in use before it, in bytes
    (see the module docstring); None where ``/proc/self`` cannot measure it."""
    z.grad = None
    gc.collect()
    if z.device.type == "cuda":
        torch.cuda.synchronize(z.device)
        torch.cuda.reset_peak_memory_stats(z.device)
        base = torch.cuda.memory_allocated(z.device)
        fn(z, label).backward()
        torch.cuda.synchronize(z.device)
        return torch.cuda.max_memory_allocated(z.device) - base
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM)
        base = _proc_status()["VmRSS"]
        fn(z, label).backward()
        return _proc_status()["VmHWM"] - base
    except OSError:
        return None


def pin_malloc() -> None:
    """glibc: fixed 128 KiB mmap/trim thresholds for this process, so that its resident size
    follows the live tensors (no-op without glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except OSError:
        pass


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def run_benchmark(
    *,
    batch: int,
    classes: int,
    height: int,
    width: int,
    repeats: int,
    warmup: int,
    ignore_frac: float,
    device: torch.device,
    rows: Optional[Sequence[str]] = None,
    log: Callable[[str], None] = _stderr,
) -> str:
    """Benchmark the rows of :func:`build_rows` on random float32 inputs.

    Args:
        batch, classes, height, width (int): Logits shape ``(batch, classes, height, width)``.
        repeats (int): Timed forward + backward steps of every row.
        warmup (int): Untimed steps of every row before.
        ignore_frac (float): Fraction of pixels labelled :data:`IGNORE`.
        device (torch.device): Where the inputs live.
        rows (Sequence[str] | None): Keep only the rows whose name contains one of these
            (case-insensitive). Default: all.
        log (callable): Receives the progress lines (sanity values, warmup times). Default:
            printed to stderr.

    Returns:
        str: The markdown table (a header line, then one row per loss); the ratio column is
        ``n/a`` when :data:`BASELINE` is filtered out.
    """
    g = torch.Generator().manual_seed(0)
    shape = (batch, classes, height, width)
    base = (torch.randn(shape, generator=g) * 3).to(device)
    label = torch.randint(0, classes, (batch, height, width), generator=g)
    label[torch.rand(label.shape, generator=g) < ignore_frac] = IGNORE
    label = label.to(device)
    table = build_rows()
    if rows:
        table = [r for r in table if any(s.lower() in r[0].lower() for s in rows)]
    z = base.clone().requires_grad_()

    # sanity: the fused loss equals the one-hot reference and the loss list
    with torch.no_grad():
        ref = onehot_reference_ce_l1()(base.double(), label).item()
    fused = CEMarginalLoss("l1")(base, label).item()
    listed = (
        CrossEntropyLoss(avg_non_ignore=True)(base, label, ignore_index=IGNORE)
        + LabelMarginalLoss("l1")(base, label)
    ).item()
    log(
        f"[{device}] sanity: fused {fused:.6f}, loss list {listed:.6f}, one-hot reference "
        f"(float64) {ref:.6f}"
    )

    for name, fn in table:  # warmup (compiles the fused kernels once)
        t0 = time.perf_counter()
        for _ in range(warmup):
            step_time(fn, z, label)
        log(f"[{device}] warmup {name}: {time.perf_counter() - t0:.1f}s")
    times: Dict[str, List[float]] = {name: [] for name, _ in table}
    for _ in range(repeats):
        for name, fn in table:
            times[name].append(step_time(fn, z, label))
    mem = {name: peak_extra_bytes(fn, z, label) for name, fn in table}

    base_t = min(times[BASELINE]) if BASELINE in times else None
    logits_mib = base.numel() * base.element_size() / 2**20
    lines = [
        f"Device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; "
        f"logits {tuple(shape)} float32 = {logits_mib:.0f} MiB, {ignore_frac:.0%} ignored "
        f"pixels; forward + backward; {repeats} interleaved repeats after {warmup} warmup.",
        "",
        "| loss | time min (ms) | time median (ms) | ratio to mmseg CE | peak extra memory (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, _ in table:
        t_min, t_med = min(times[name]) * 1e3, statistics.median(times[name]) * 1e3
        ratio = f"{min(times[name]) / base_t:.2f}x" if base_t else "n/a"
        m = mem[name]
        m_str = f"{m / 2**20:.0f}" if m is not None else "n/a"
        lines.append(f"| {name} | {t_min:.1f} | {t_med:.1f} | {ratio} | {m_str} |")
    return "\n".join(lines)


#: The sizes of the size table: ``(B, K, H, W)``; ``K = 1`` is the binary (sigmoid) case.
SIZES = (
    (2, 19, 64, 128),
    (8, 19, 64, 64),
    (2, 19, 128, 256),
    (2, 19, 256, 512),
    (2, 19, 512, 1024),
    (8, 1, 64, 64),
    (8, 1, 256, 256),
)


def size_columns(binary: bool) -> List[Tuple[str, Optional[LossFn]]]:
    """The columns of one row of the size table: ``(name, fn)``, mmseg's loss first; the eager
    column is None in binary rows (the binary path has no compiled kernels)."""
    base = CrossEntropyLoss(use_sigmoid=binary, avg_non_ignore=True)
    default = CEMarginalLoss("l1", use_sigmoid=binary)
    eager = None if binary else CEMarginalLoss("l1", use_sigmoid=binary, compile=False)
    return [
        ("mmseg", lambda z, y: base(z, y, ignore_index=IGNORE)),
        ("default", default),
        ("eager", eager),
    ]


def _inputs(shape: Sequence[int], device: torch.device, seed: int) -> Tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    b, k, h, w = shape
    z = (torch.randn(tuple(shape), generator=g) * 3).to(device).requires_grad_()
    label = torch.randint(0, max(k, 2), (b, h, w), generator=g)
    label[torch.rand(label.shape, generator=g) < 0.05] = IGNORE
    return z, label.to(device)


def run_size_table(
    *,
    sizes: Sequence[Sequence[int]] = SIZES,
    repeats: int,
    warmup: int,
    device: torch.device,
    per_size: bool = False,
    log: Callable[[str], None] = _stderr,
) -> str:
    """Time the columns of :func:`size_columns` at every size, the order of the columns
    rotating from one repeat to the next.

    ``per_size=False`` (default) interleaves the sizes in each repeat: every step of a size
    follows the steps of the other sizes (caches and allocator as a larger computation left
    them). ``per_size=True`` runs all repeats of one size before the next (the steady state of
    a loop at one input size, as in training).

    Returns:
        str: A markdown table, one row per size: min and median milliseconds of each column
        and the ratio of each min to mmseg's min.
    """
    cases = []
    for i, shape in enumerate(sizes):
        z, label = _inputs(shape, device, seed=i)
        cases.append((tuple(shape), z, label, size_columns(shape[1] == 1)))
    for shape, z, label, cols in cases:  # warmup (compiles the kernels)
        for name, fn in cols:
            if fn is not None:
                t0 = time.perf_counter()
                for _ in range(warmup):
                    step_time(fn, z, label)
                log(f"[{device}] warmup {shape} {name}: {time.perf_counter() - t0:.1f}s")
    times: Dict[Tuple, List[Tuple[float, float]]] = {}
    # interleaved: repeat-major (each size's steps follow the other sizes' steps); per size:
    # size-major (all repeats of one size, then the next)
    order = (
        [(case, r) for case in cases for r in range(repeats)]
        if per_size
        else [(case, r) for r in range(repeats) for case in cases]
    )
    for (shape, z, label, cols), r in order:
        # the columns take turns at running first, so that no column always finds the
        # allocator and the caches as the same other column left them
        live = [(name, fn) for name, fn in cols if fn is not None]
        shift = r % len(live)
        for name, fn in live[shift:] + live[:shift]:
            times.setdefault((shape, name), []).append(step_times(fn, z, label))
    clock = "CPU" if device.type == "cpu" else "wall"
    pick = 1 if device.type == "cpu" else 0
    mode = "per size" if per_size else "interleaved across sizes"
    lines = [
        f"Device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; "
        f"float32 logits, 5% ignored pixels; forward + backward; {repeats} repeats {mode} "
        f"after {warmup} warmup. Cells: min {clock} ms / median wall ms (ratio of the min "
        f"{clock} time to mmseg's).",
        "",
        "| input | mmseg CE (BCE) | CE + L1 default | CE + L1 eager |",
        "|---|---:|---:|---:|",
    ]
    for shape, _, _, cols in cases:
        b, k, h, w = shape
        label = f"binary {b}x1x{h}x{w} (BCE)" if k == 1 else f"{b}x{k}x{h}x{w}"
        base = min(t[pick] for t in times[(shape, "mmseg")])
        cells = []
        for name, fn in cols:
            if fn is None:
                cells.append("—")
                continue
            best = min(t[pick] for t in times[(shape, name)])
            wall = statistics.median(t[0] for t in times[(shape, name)])
            cell = f"{best * 1e3:.2f} / {wall * 1e3:.2f}"
            if name != "mmseg":
                cell += f" ({best / base:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=2, help="loss table: batch size")
    p.add_argument("--classes", type=int, default=19, help="loss table: classes")
    p.add_argument("--height", type=int, default=None, help="loss table at this height")
    p.add_argument("--width", type=int, default=None, help="loss table at this width")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ignore-frac", type=float, default=0.05, help="fraction of ignored pixels")
    p.add_argument(
        "--device", default="auto", help="'cpu', 'cuda' or 'auto' (cpu, plus cuda if present)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads (size table default: 1)"
    )
    p.add_argument("--rows", nargs="*", help="loss table: only rows containing one of these")
    p.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=None,
        metavar="BxKxHxW",
        help="size table: these inputs instead of the default sizes (K=1: the binary row)",
    )
    p.add_argument(
        "--per-size",
        action="store_true",
        help="size table: all repeats of one size before the next (default: sizes interleaved "
        "in each repeat)",
    )
    return p.parse_args(argv)


def parse_size(text: str) -> Tuple[int, int, int, int]:
    """``'2x19x64x128'`` -> ``(2, 19, 64, 128)``.

    Raises:
        argparse.ArgumentTypeError: Naming the text unless it is four positive integers joined
            by ``x``.
    """
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            f"size {text!r} is not BxKxHxW with four positive integers (e.g. 2x19x64x128)"
        )
    b, k, h, w = (int(p) for p in parts)
    return b, k, h, w


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    loss_table = args.height is not None or args.width is not None
    if loss_table and (args.height is None or args.width is None):
        raise SystemExit("--height and --width go together (the loss table of one size)")
    if loss_table and args.sizes:
        raise SystemExit("--sizes is for the size table; the loss table takes --height/--width")
    threads = args.threads or (None if loss_table else 1)
    if threads:
        torch.set_num_threads(threads)
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    if not loss_table:
        print(f"CPU: {platform.processor() or platform.machine()}; python {sys.version.split()[0]}")
    if loss_table:
        pin_malloc()  # this process' resident size follows its live tensors (memory column)
    for dev in devices:
        if loss_table:
            table = run_benchmark(
                batch=args.batch,
                classes=args.classes,
                height=args.height,
                width=args.width,
                repeats=args.repeats,
                warmup=args.warmup,
                ignore_frac=args.ignore_frac,
                device=torch.device(dev),
                rows=args.rows,
            )
        else:
            table = run_size_table(
                sizes=args.sizes or SIZES,
                repeats=args.repeats,
                warmup=args.warmup,
                device=torch.device(dev),
                per_size=args.per_size,
            )
        print(table)
        print()


if __name__ == "__main__":
    main()
