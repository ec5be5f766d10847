"""``CEMarginalLoss`` under DistributedDataParallel: 2 CPU processes (gloo), each on half of a
global batch, give the losses, gradients and weights of a single process.

``pooling='image'`` (per-image penalties, images averaged; CE averaged over valid pixels, the
same number on both ranks) equals the loss of the whole batch in one process. With
``pooling='batch'`` each rank pools its own batch (no cross-rank reduction inside the loss), so
DDP's averaged gradient is that of the mean of the two half-batch losses, which differs from
pooling the whole batch.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "data" / "ddp_ce_marginal.py"
_spec = importlib.util.spec_from_file_location("ddp_ce_marginal", WORKER)
ddp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ddp)


def single_process(target: str, per_rank: bool) -> dict:
    """The same training in one process: the loss of the whole batch, or (``per_rank``) the
    mean of the losses of the ranks' halves."""
    net = ddp.make_net()
    loss_fn = ddp.make_loss(target)
    opt = torch.optim.SGD(net.parameters(), lr=ddp.LR)
    x, y = ddp.make_batch()
    half = x.shape[0] // ddp.WORLD
    losses, grads = [], []
    for _ in range(ddp.ITERS):
        opt.zero_grad()
        parts = [
            loss_fn(net(x[r * half : (r + 1) * half]), y[r * half : (r + 1) * half])
            for r in range(ddp.WORLD)
        ]
        loss = torch.stack(parts).mean() if per_rank else loss_fn(net(x), y)
        loss.backward()
        losses.append((torch.stack(parts).detach(), loss.detach()))
        grads.append([p.grad.clone() for p in net.parameters()])
        opt.step()
    return dict(losses=losses, grads=grads, state=net.state_dict())


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory, fresh_python):
    """One 2-process run (both targets): ``python ddp_ce_marginal.py OUT`` in a fresh process,
    which forks the two gloo ranks (about 1 s)."""
    out = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    proc = fresh_python.run(WORKER, out, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("target", ddp.TARGETS)
def test_two_process_ddp_matches_one_process(target, ddp_results):
    got = ddp_results[target]
    ref = single_process(target, per_rank=target == "batch")
    # CE divides by (valid pixels + float32 eps): halves and whole batch differ by ~eps / N
    tol = dict(rtol=1e-7, atol=1e-10)
    for it in range(ddp.ITERS):
        rank_losses, ref_loss = ref["losses"][it]
        # each rank's loss is that of its half in one process
        torch.testing.assert_close(got["losses"][it], rank_losses, **tol)
        torch.testing.assert_close(got["losses"][it].mean(), ref_loss, **tol)
        for g_ddp, g_ref in zip(got["grads"][it], ref["grads"][it]):
            torch.testing.assert_close(g_ddp, g_ref, **tol)
    for name, value in ref["state"].items():
        torch.testing.assert_close(got["state"][name], value, **tol)
    # the two halves differ, and for 'batch' pooling the whole batch would be another loss
    assert not torch.allclose(got["losses"][0][0], got["losses"][0][1])
    whole = ddp.make_loss(target)(ddp.make_net()(ddp.make_batch()[0]), ddp.make_batch()[1])
    if target == "image":
        torch.testing.assert_close(got["losses"][0].mean(), whole, **tol)
    else:
        assert abs(got["losses"][0].mean().item() - whole.item()) > 1e-6
