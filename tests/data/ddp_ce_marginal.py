"""Two-process (gloo) DDP training of a tiny conv net with ``CEMarginalLoss``.

``python ddp_ce_marginal.py OUT`` trains on CPU, once per loss target (``'image'``,
``'batch'``), each rank on its half of one global batch, and rank 0 saves to ``OUT`` the
per-rank losses and the (all-reduced) gradients of every iteration, and the final weights.
The tests rebuild the same net, batch and loss in one process (``make_net``, ``make_batch``,
``make_loss``) and compare.
"""

import os
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmseg_marginal.losses import CEMarginalLoss

WORLD = 2
ITERS = 3
LR = 0.5


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).double()


def make_batch() -> tuple:
    """A global batch of 4 images (8x8, 4 classes): every image has 6 ignored pixels, so that
    each rank's half holds the same number of valid pixels."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4, 8, 8), generator=g)
    y[:, 0, :6] = 255
    y[1, 4:, 4:] = 3  # class 3 only on rank 0's second image
    return x, y


def make_loss(target: str) -> CEMarginalLoss:
    return CEMarginalLoss("kl", marginal_weight=0.5, temperature=2.0, pooling=target, compile=False)


TARGETS = ("image", "batch")


def _worker(rank: int, out: str, init_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    results = {target: _train(rank, target) for target in TARGETS}
    if rank == 0:
        torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


def _train(rank: int, target: str) -> dict:
    net = DistributedDataParallel(make_net())
    loss_fn = make_loss(target)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    x, y = make_batch()
    half = x.shape[0] // WORLD
    x, y = x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half]
    losses, grads = [], []
    for _ in range(ITERS):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        both = [torch.zeros((), dtype=loss.dtype) for _ in range(WORLD)]
        dist.all_gather(both, loss.detach())
        losses.append(torch.stack(both))
        grads.append([p.grad.clone() for p in net.parameters()])
        opt.step()
    state = {k: v.clone() for k, v in net.module.state_dict().items()}
    return dict(losses=losses, grads=grads, state=state)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init")
        # fork: the ranks inherit the imported packages instead of importing them again
        mp.start_processes(
            _worker, args=(sys.argv[1], init), nprocs=WORLD, join=True, start_method="fork"
        )
