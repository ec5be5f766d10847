"""The losses on torch releases without ``torch.compile``/``torch.compiler.is_compiling``.

``torch.compiler.is_compiling`` came with torch 2.3 (2.0-2.2 have ``torch._dynamo.is_compiling``)
and ``torch.compile`` with torch 2.0; the declared range starts at torch 1.13. The newer APIs are
removed here with monkeypatch: choosing between compiled and eager kernels must not raise, and
where nothing can be compiled the loss gives the eager value and gradient.
"""

import types

import pytest
import torch
import torch._dynamo  # noqa: F401  (loaded before the APIs are removed: it imports them itself)

from mmseg_marginal.losses import CEMarginalLoss, fused


def loss_and_grad(loss: torch.nn.Module, z: torch.Tensor, label: torch.Tensor):
    z = z.clone().requires_grad_(True)
    value = loss(z, label, ignore_index=255)
    value.backward()
    return value.detach(), z.grad


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64)
    label = torch.randint(0, 4, (2, 8, 8), generator=gen)
    label[0, :2] = 255
    return z, label


def test_torch_2_0_to_2_2_without_compiler_is_compiling(monkeypatch, logits):
    z, label = logits
    expected = loss_and_grad(CEMarginalLoss(penalty="l1", compile=False), z, label)
    monkeypatch.delattr(torch.compiler, "is_compiling")
    calls = []
    # torch 2.0-2.2's own dynamo check (in 2.13 it would forward to the removed API)
    monkeypatch.setattr(torch._dynamo, "is_compiling", lambda: calls.append(1) or False)
    assert fused.is_compiling() is False
    assert calls  # the fallback was asked
    assert fused.resolve_compile(True, torch.zeros(4, dtype=torch.float32)) is True
    got = loss_and_grad(CEMarginalLoss(penalty="l1", compile="auto"), z, label)  # small: eager
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_torch_before_2_0_without_compile(monkeypatch, logits):
    z, label = logits
    expected = loss_and_grad(CEMarginalLoss(penalty="l1", compile=False), z, label)
    # torch.compiler is a lazily loaded submodule: stand in an empty one (torch < 2.1 has none)
    monkeypatch.setattr(torch, "compiler", types.SimpleNamespace())
    monkeypatch.delattr(torch, "compile")
    assert not fused.compile_available()
    with monkeypatch.context() as inner:
        inner.setattr(torch, "_dynamo", None)  # torch < 2.0: no dynamo either
        assert fused.is_compiling() is False
    for mode in (True, "auto"):
        got = loss_and_grad(CEMarginalLoss(penalty="l1", compile=mode), z, label)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
