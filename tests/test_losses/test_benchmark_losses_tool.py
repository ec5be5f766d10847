"""tools/benchmark_losses.py runs end to end on a tiny size and prints every row."""

import importlib.util
from pathlib import Path

import torch

TOOL = Path(__file__).resolve().parents[2] / "tools" / "benchmark_losses.py"


def _load():
    spec = importlib.util.spec_from_file_location("benchmark_losses", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_prints_the_full_table(capsys, monkeypatch):
    bench = _load()
    monkeypatch.setattr(bench, "_pin_malloc", lambda: None)  # keep this process' malloc as is
    args = ["--height", "8", "--width", "12", "--repeats", "1", "--warmup", "1", "--device", "cpu"]
    bench.main(args)
    out = capsys.readouterr()
    rows = [line for line in out.out.splitlines() if line.startswith("| ") and "---" not in line]
    names = [name for name, _ in bench.build_rows()]
    assert [r.split(" | ")[0][2:] for r in rows[1:]] == names
    assert "| mmseg CrossEntropyLoss (avg_non_ignore) |" in out.out and "1.00x" in out.out
    assert "sanity" in out.err


def test_onehot_reference_equals_fused_loss():
    bench = _load()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64)
    label = torch.randint(0, 5, (2, 6, 7), generator=g)
    label[:, 0] = 255
    from mmseg_marginal.losses import CEMarginalLoss

    ref = bench.onehot_reference_ce_l1()(z, label)
    torch.testing.assert_close(CEMarginalLoss("l1")(z, label), ref)
