"""tools/benchmark_losses.py: the measuring functions and the command line."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmseg_marginal.losses import CEMarginalLoss

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "benchmark_losses.py"
_spec = importlib.util.spec_from_file_location("benchmark_losses", TOOL)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
BASELINE = bench.BASELINE
build_rows = bench.build_rows
onehot_reference_ce_l1 = bench.onehot_reference_ce_l1
peak_extra_bytes = bench.peak_extra_bytes
run_benchmark = bench.run_benchmark
step_time = bench.step_time
TINY = dict(batch=2, classes=19, height=8, width=12, repeats=1, warmup=1, ignore_frac=0.05)
HEADER = "| loss | time min (ms) | time median (ms) | ratio to mmseg CE | peak extra memory (MiB) |"


def table_rows(text: str) -> list:
    """The markdown rows (header first, separator left out) of the printed table(s)."""
    return [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def row_names(rows: list) -> list:
    return [r.split(" | ")[0][2:] for r in rows[1:]]


def test_tiny_run_gives_every_row_and_the_sanity_line():
    logged = []
    table = run_benchmark(**TINY, device=torch.device("cpu"), log=logged.append)
    assert table.startswith("Device: cpu (")
    assert (
        "logits (2, 19, 8, 12) float32" in table and "1 interleaved repeats after 1 warmup" in table
    )
    rows = table_rows(table)
    assert rows[0] == HEADER
    names = [name for name, _ in build_rows()]
    assert names[0] == BASELINE and row_names(rows) == names
    cells = [r.strip("| ").split(" | ") for r in rows[1:]]
    assert cells[0][3] == "1.00x"
    assert all(re.fullmatch(r"\d+\.\d\d", c[3][:-1]) and c[3].endswith("x") for c in cells)
    # sanity line: the fused loss, the loss list and the float64 one-hot reference agree
    sanity = re.fullmatch(
        r"\[cpu\] sanity: fused (\S+), loss list (\S+), one-hot reference \(float64\) (\S+)",
        logged[0],
    )
    fused, listed, ref = (float(v) for v in sanity.groups())
    assert fused == pytest.approx(ref, abs=1e-5) and listed == pytest.approx(ref, abs=1e-5)
    assert [line.split(": ")[0] for line in logged[1:]] == [f"[cpu] warmup {n}" for n in names]


def test_row_filter_without_the_baseline_has_no_ratio():
    table = run_benchmark(**TINY, device=torch.device("cpu"), rows=["FOCAL"], log=lambda m: None)
    rows = table_rows(table)
    assert row_names(rows) == ["SoftmaxFocalLoss gamma=2"]
    assert rows[1].strip("| ").split(" | ")[3] == "n/a"


def test_onehot_reference_equals_fused_loss():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64)
    label = torch.randint(0, 5, (2, 6, 7), generator=g)
    label[:, 0] = 255
    ref = onehot_reference_ce_l1()(z, label)
    torch.testing.assert_close(CEMarginalLoss("l1")(z, label), ref)
    torch.testing.assert_close(
        CEMarginalLoss("l1", temperature=2.0)(z, label), onehot_reference_ce_l1(2.0)(z, label)
    )


def test_one_step_is_timed_and_measured_with_a_fresh_gradient():
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    label = torch.zeros(2, 4, 4, dtype=torch.long)
    calls = []

    def fn(logits, lab):
        calls.append(lab)
        return (logits * logits).sum()

    z.grad = torch.ones_like(z)  # left over from an earlier step: must not accumulate
    assert step_time(fn, z, label) > 0
    torch.testing.assert_close(z.grad, 2 * z.detach())
    extra = peak_extra_bytes(fn, z, label)
    assert extra is None or extra >= 0
    torch.testing.assert_close(z.grad, 2 * z.detach())
    assert len(calls) == 2 and all(c is label for c in calls)


@pytest.mark.slow
def test_command_line_prints_the_table(tmp_path):
    cmd = [sys.executable, str(TOOL), "--height", "8", "--width", "12", "--repeats", "1"]
    cmd += ["--warmup", "1", "--device", "cpu", "--threads", "1"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("Device: cpu (1 threads)")
    rows = table_rows(proc.stdout)
    assert rows[0] == HEADER
    assert row_names(rows) == [name for name, _ in build_rows()]
    assert f"| {BASELINE} |" in proc.stdout and "| 1.00x |" in proc.stdout
    assert "[cpu] sanity: fused" in proc.stderr


def test_size_table_has_one_row_per_size_and_ratios_to_mmseg():
    logged = []
    table = bench.run_size_table(
        sizes=[(2, 19, 8, 12), (2, 1, 8, 12)],
        repeats=1,
        warmup=1,
        device=torch.device("cpu"),
        log=logged.append,
    )
    rows = table_rows(table)
    assert rows[0] == "| input | mmseg CE (BCE) | CE + L1 default | CE + L1 eager |"
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == ["2x19x8x12", "binary 2x1x8x12 (BCE)"]
    multi, binary = (r.strip("| ").split(" | ") for r in rows[1:])
    assert all(re.fullmatch(r"\d+\.\d\d / \d+\.\d\d \(\d+\.\d\dx\)", c) for c in multi[2:])
    assert binary[3] == "—"  # the binary path has no compiled kernels
    assert len(logged) == 5  # warmup lines: 3 columns + 2 binary columns


@pytest.mark.parametrize("per_size", [False, True])
def test_size_table_orders_the_steps_by_repeat_or_by_size(monkeypatch, per_size):
    steps = []

    def fake_step_times(fn, z, label):
        steps.append(tuple(z.shape))
        return 1e-3, 1e-3

    monkeypatch.setattr(bench, "step_times", fake_step_times)
    sizes = [(2, 19, 4, 4), (2, 1, 4, 4)]
    table = bench.run_size_table(
        sizes=sizes, repeats=3, warmup=0, device=torch.device("cpu"), per_size=per_size
    )
    a, b = sizes  # 3 columns at the multi-class size, 2 at the binary one
    if per_size:
        assert steps == [a] * 9 + [b] * 6
        assert "3 repeats per size after 0 warmup" in table
    else:
        assert steps == ([a] * 3 + [b] * 2) * 3
        assert "3 repeats interleaved across sizes after 0 warmup" in table
    assert bench.parse_args(["--per-size"]).per_size and not bench.parse_args([]).per_size


def test_sizes_option_parses_bxkxhxw_and_names_a_bad_size(capsys):
    args = bench.parse_args(["--sizes", "2x19x4x4", "8X1x64x64"])
    assert args.sizes == [(2, 19, 4, 4), (8, 1, 64, 64)]
    assert bench.parse_args([]).sizes is None
    for bad in ("2x19x4", "2x19x4x0", "2x19xfourx4"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--sizes", bad])
        assert f"size {bad!r} is not BxKxHxW" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--sizes is for the size table"):
        bench.main(["--sizes", "2x19x4x4", "--height", "8", "--width", "8"])


@pytest.mark.slow
def test_command_line_size_table_at_the_given_sizes(tmp_path):
    cmd = [sys.executable, str(TOOL), "--sizes", "2x19x4x4", "--repeats", "1", "--warmup", "1"]
    cmd += ["--device", "cpu"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = table_rows(proc.stdout)
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == ["2x19x4x4"]
