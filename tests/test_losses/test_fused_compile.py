"""Which kernels run: the torch.compile path is taken where a C++ compiler exists and matches
eager; a compiler failure falls back to eager once, visibly; ``compile='auto'`` switches at
``AUTO_COMPILE_MIN_NUMEL`` logits elements.

Every loss module owns its kernel runner (``loss.kernels``: compiled kernels, call counts,
failure flag), so an earlier failure elsewhere in the process cannot turn these tests into
skips or into eager-versus-eager checks.
"""

import logging
import shutil

import pytest
import torch
from loss_cases import random_batch
from mmengine.logging import MMLogger

from mmseg_marginal.losses import CEMarginalLoss, LabelMarginalLoss
from mmseg_marginal.losses.fused import (
    AUTO_COMPILE_MIN_NUMEL,
    KernelStats,
    compile_available,
    resolve_compile,
)


@pytest.fixture
def fresh_compile_state(monkeypatch):
    monkeypatch.delenv("MMSEG_MARGINAL_COMPILE", raising=False)
    assert compile_available()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def _cxx_compiler():
    """The C++ compiler inductor would call on the CPU, or None."""
    from torch._inductor import config

    names = [config.cpp.cxx[0]] if config.cpp.cxx[0] else []
    for name in names + ["g++", "c++", "clang++"]:
        if shutil.which(name):
            return name
    return None


needs_cxx = pytest.mark.skipif(
    _cxx_compiler() is None, reason="no C++ compiler: torch.compile cannot build CPU kernels"
)


def test_compile_failure_falls_back_to_eager(monkeypatch, fresh_compile_state):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    logger = MMLogger.get_current_instance()  # where the warning goes (logger="current")
    handler = _Records()
    logger.addHandler(handler)
    z, label = random_batch()
    z1 = z.clone().requires_grad_()
    z2 = z.clone().requires_grad_()
    loss = CEMarginalLoss(compile=True)
    try:
        got = loss(z1, label)
        loss(z1, label)  # already known broken: no second warning
    finally:
        logger.removeHandler(handler)
    logged = [r for r in handler.records if "torch.compile" in r.getMessage()]
    assert len(logged) == 1 and "no compiler here" in logged[0].getMessage()
    assert "falling back to eager" in logged[0].getMessage()
    assert logged[0].levelno == logging.WARNING
    ref = CEMarginalLoss(compile=False)(z2, label)
    torch.testing.assert_close(got, ref)
    got.backward()
    ref.backward()
    torch.testing.assert_close(z1.grad, z2.grad)
    # 2 forwards and 1 backward of the broken module, all eager
    assert loss.kernels.stats() == KernelStats(compiled_calls=0, eager_calls=3, broken=True)
    assert not loss.kernels.use_compile(z)
    assert resolve_compile(True, z)  # other modules still compile


def test_auto_compiles_from_the_threshold_on(monkeypatch, fresh_compile_state):
    """``compile='auto'`` through the loss: float32 logits of ``2**20`` elements take the
    compiled path, one element fewer or float64 stay eager (``torch.compile`` replaced by the
    identity, so the compiled-path math runs without a compiler)."""
    assert AUTO_COMPILE_MIN_NUMEL == 2**20
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    k = 4
    big = AUTO_COMPILE_MIN_NUMEL // k  # pixels per batch with exactly 2**20 logits elements
    cases = [
        ((1, k, 1, big), torch.float32, True),
        ((1, k, 1, big - 1), torch.float32, False),
        ((1, k, 1, big), torch.float64, False),
    ]
    for shape, dtype, compiled in cases:
        z = torch.randn(shape, dtype=dtype)
        label = torch.randint(0, k, (shape[0],) + shape[2:])
        loss = CEMarginalLoss(compile="auto")
        loss(z, label)
        assert loss.kernels.stats() == (int(compiled), int(not compiled), False), (shape, dtype)
        assert resolve_compile("auto", z) is compiled


def test_compiled_math_matches_eager_kernels(monkeypatch, fresh_compile_state):
    """The compiled-path (fusible) formulation run without compilation equals the eager
    kernels, forward and backward, for CE + KL at tau != 1."""
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
    z, label = random_batch(b=2, k=5, h=6, w=7)
    results = []
    for mode in (True, False):
        zz = z.clone().requires_grad_()
        loss = CEMarginalLoss("kl", marginal_weight=0.3, temperature=2.5, compile=mode)
        loss.enable_stats()
        val = loss(zz, label)
        val.backward()
        results.append((val, zz.grad, loss.last_stats.prop_mae))
        assert loss.kernels.stats() == (2, 0, False) if mode else (0, 2, False)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@needs_cxx
def test_compiled_kernels_run_and_match_eager(fresh_compile_state):
    """The torch.compile path itself, at its smallest: CE + KL at tau != 1 on one batch with
    ignored pixels, forward and backward compiled (one compilation: ~5 s with torch's on-disk
    compile cache, ~20 s without), against eager. The two tests below add CE + L1, new
    spatial sizes without recompiling, and the marginal-only kernels."""
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 5, 70, 60, generator=g, dtype=torch.float32) * 4
    label = torch.randint(0, 4, (2, 70, 60), generator=g)
    label[:, :3] = 255
    outs = []
    for mode in (True, False):
        zz = z.clone().requires_grad_()
        loss = CEMarginalLoss("kl", marginal_weight=0.1, temperature=2.5, compile=mode)
        val = loss(zz, label)
        val.backward()
        outs.append((val, zz.grad))
        assert loss.kernels.stats() == ((2, 0, False) if mode else (0, 2, False))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-8)
    assert outs[1][1].abs().max() > 0


@pytest.mark.slow
@needs_cxx
def test_compiled_kernels_match_eager_without_recompiling(fresh_compile_state):
    """torch.compile path (about 20-60 s of compilation on a CPU)."""
    from torch._dynamo.utils import counters

    g = torch.Generator().manual_seed(0)
    calls = 0
    runs = []
    for kwargs in (dict(penalty="l1"), dict(penalty="kl", marginal_weight=0.1, temperature=2.5)):
        graphs = None
        for h, w in ((70, 60), (50, 90), (80, 64)):  # all above the 4096-pixel kernel switch
            z = torch.randn(2, 5, h, w, generator=g) * 4
            label = torch.randint(0, 4, (2, h, w), generator=g)
            label[:, :3] = 255
            outs = []
            for mode in (True, False):
                zz = z.clone().requires_grad_()
                loss = CEMarginalLoss(compile=mode, **kwargs)
                val = loss(zz, label)
                val.backward()
                outs.append((val, zz.grad))
                runs.append(loss.kernels.stats())
            calls += 2
            assert runs[-2:] == [(2, 0, False), (0, 2, False)], runs
            torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-8)
            if graphs is None:
                graphs = counters["stats"]["unique_graphs"]
            else:  # new spatial sizes reuse the dynamic-shape graphs
                assert counters["stats"]["unique_graphs"] == graphs
    assert calls == 12


@pytest.mark.slow
@needs_cxx
def test_compiled_standalone_regularizer_matches_eager(fresh_compile_state):
    """The marginal-only compiled kernels (no CE), including last_stats and bad labels."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 6, 70, 60, generator=g) * 4
    label = torch.randint(0, 5, (2, 70, 60), generator=g)
    label[0, :10] = 255
    results = []
    for mode in (True, False):
        zz = z.clone().requires_grad_()
        loss = LabelMarginalLoss("kl", pooling="batch", compile=mode)
        loss.enable_stats()
        val = loss(zz, label)
        val.backward()
        results.append((val, zz.grad, loss.last_stats))
        bad = label.clone()
        bad[1, 5, 5] = 6
        with pytest.raises(ValueError, match="label value 6"):
            loss(z, bad)
        # forward, backward and the refused forward
        assert loss.kernels.stats() == (3, 0, False) if mode else (0, 3, False)
    (v1, g1, s1), (v2, g2, s2) = results
    torch.testing.assert_close(v1, v2, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-4 * g2.abs().max().item())
    assert g2.abs().max() > 0
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
