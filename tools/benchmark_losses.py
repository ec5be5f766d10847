"""Benchmark the label-marginal losses and the baselines: forward + backward time and peak memory.

Prints a markdown table (one row per loss, all measured in the same run, rows interleaved in
each repeat so that machine-load changes hit every row alike):

* time: min (and median) over ``--repeats`` timed forward + backward steps after ``--warmup``
  untimed ones (the first warmup compiles the fused kernels of ``CEMarginalLoss``);
* ratio: min time divided by the min time of mmseg's ``CrossEntropyLoss(avg_non_ignore=True)``;
* peak extra memory: on CPU, the peak resident set size during one forward + backward minus the
  resident size just before it (``/proc/self/clear_refs`` resets the peak, glibc's mmap
  threshold is pinned to 128 KiB so freed tensors go back to the OS); on CUDA,
  ``torch.cuda.max_memory_allocated`` minus the allocated memory before the step. It includes the
  gradient of the logits (one logits-sized tensor for every row).

Example (the issue's setting; a quick run: ``--height 128 --width 256 --repeats 3``)::

    python tools/benchmark_losses.py --batch 2 --classes 19 --height 512 --width 1024 \\
        --repeats 10 --device cpu
"""

import argparse
import ctypes
import gc
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.losses import CrossEntropyLoss, DiceLoss

from mmseg_marginal.losses import (
    CEMarginalLoss,
    ClasswiseDiceLoss,
    GeneralizedDiceLoss,
    LabelMarginalLoss,
    SoftmaxFocalLoss,
)

IGNORE = 255
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def onehot_reference_ce_l1(tau: float = 10.0) -> LossFn:
    """Straightforward CE + L1 marginal: one-hot labels, masks by elementwise products."""

    def fn(z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
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
    """The benchmarked rows: ``(name, fn(logits, label) -> scalar)``."""
    mm_ce = CrossEntropyLoss(avg_non_ignore=True)
    mm_dice = DiceLoss(use_sigmoid=False, activate=True, ignore_index=IGNORE)
    marginal = LabelMarginalLoss("l1", temperature=10.0)
    ours_l1 = CEMarginalLoss("l1", marginal_weight=1.0, temperature=10.0)
    ours_kl = CEMarginalLoss("kl", marginal_weight=0.1, temperature=10.0)
    ours_eager = CEMarginalLoss("l1", marginal_weight=1.0, temperature=10.0, compile=False)
    dice_lin, dice_log = ClasswiseDiceLoss(), ClasswiseDiceLoss(log=True)
    gdice, focal = GeneralizedDiceLoss(), SoftmaxFocalLoss(gamma=2.0)

    def ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mm_ce(z, y, ignore_index=IGNORE)

    return [
        ("mmseg CrossEntropyLoss (avg_non_ignore)", ce),
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


def _step(fn: LossFn, z: torch.Tensor, label: torch.Tensor) -> float:
    z.grad = None
    _sync(z.device)
    t0 = time.perf_counter()
    fn(z, label).backward()
    _sync(z.device)
    return time.perf_counter() - t0


def _proc_status() -> Dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, val = line.split(":")
                out[key] = int(val.split()[0]) * 1024
    return out


def _peak_extra_bytes(fn: LossFn, z: torch.Tensor, label: torch.Tensor) -> Optional[int]:
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


def _pin_malloc() -> None:
    """glibc: fixed 128 KiB mmap/trim thresholds so that RSS follows live tensors."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except OSError:
        pass


def run(args: argparse.Namespace, device: torch.device) -> str:
    """Benchmark every row on ``device``; returns the markdown table."""
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, args.classes, args.height, args.width)
    base = (torch.randn(shape, generator=g) * 3).to(device)
    label = torch.randint(0, args.classes, (args.batch, args.height, args.width), generator=g)
    label[torch.rand(label.shape, generator=g) < args.ignore_frac] = IGNORE
    label = label.to(device)
    rows = build_rows()
    if args.rows:
        rows = [r for r in rows if any(s.lower() in r[0].lower() for s in args.rows)]
    z = base.clone().requires_grad_()

    # sanity: the fused loss equals the one-hot reference and the loss list
    with torch.no_grad():
        ref = onehot_reference_ce_l1()(base.double(), label).item()
    fused = CEMarginalLoss("l1")(base, label).item()
    listed = (
        CrossEntropyLoss(avg_non_ignore=True)(base, label, ignore_index=IGNORE)
        + LabelMarginalLoss("l1")(base, label)
    ).item()
    print(
        f"[{device}] sanity: fused {fused:.6f}, loss list {listed:.6f}, one-hot reference "
        f"(float64) {ref:.6f}",
        file=sys.stderr,
    )

    for name, fn in rows:  # warmup (compiles the fused kernels once)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            _step(fn, z, label)
        print(f"[{device}] warmup {name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    times: Dict[str, List[float]] = {name: [] for name, _ in rows}
    for _ in range(args.repeats):
        for name, fn in rows:
            times[name].append(_step(fn, z, label))
    mem = {name: _peak_extra_bytes(fn, z, label) for name, fn in rows}

    base_name = rows[0][0]
    base_t = min(times[base_name]) if base_name.startswith("mmseg CrossEntropyLoss") else None
    logits_mib = base.numel() * base.element_size() / 2**20
    lines = [
        f"Device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}; "
        f"logits {tuple(shape)} float32 = {logits_mib:.0f} MiB, {args.ignore_frac:.0%} ignored "
        f"pixels; forward + backward; {args.repeats} interleaved repeats after {args.warmup} "
        "warmup.",
        "",
        "| loss | time min (ms) | time median (ms) | ratio to mmseg CE | peak extra memory (MiB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, _ in rows:
        t_min, t_med = min(times[name]) * 1e3, statistics.median(times[name]) * 1e3
        ratio = f"{min(times[name]) / base_t:.2f}x" if base_t else "n/a"
        m = mem[name]
        m_str = f"{m / 2**20:.0f}" if m is not None else "n/a"
        lines.append(f"| {name} | {t_min:.1f} | {t_med:.1f} | {ratio} | {m_str} |")
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--classes", type=int, default=19)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ignore-frac", type=float, default=0.05, help="fraction of ignored pixels")
    p.add_argument(
        "--device", default="auto", help="'cpu', 'cuda' or 'auto' (cpu, plus cuda if present)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--rows", nargs="*", help="only rows whose name contains one of these")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    _pin_malloc()
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    for dev in devices:
        print(run(args, torch.device(dev)))
        print()


if __name__ == "__main__":
    main()
