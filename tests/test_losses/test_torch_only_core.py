"""The loss core on torch alone: a fresh process where importing mmseg, mmcv or mmengine
raises imports ``mmseg_marginal.losses`` and computes every loss forward and backward."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = r"""
import importlib.abc
import json
import sys
import warnings

BLOCKED = ("mmseg", "mmcv", "mmengine")


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked)", name=name)
        return None


sys.meta_path.insert(0, Block())
warnings.simplefilter("error")  # no warning either (nothing is installed to register into)

import torch

import mmseg_marginal.losses as L

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
z = torch.randn(2, 4, 6, 5, generator=g, dtype=torch.float64)
label = torch.randint(0, 4, (2, 6, 5), generator=g)
label[0, 0] = 255
zb = torch.randn(2, 1, 6, 5, generator=g, dtype=torch.float64)
lb = torch.randint(0, 2, (2, 6, 5), generator=g)
lb[1, :2] = 255
cases = {
    "CEMarginalLoss l1": (L.CEMarginalLoss("l1", compile=False), z, label),
    "CEMarginalLoss kl batch": (L.CEMarginalLoss("kl", pooling="batch"), z, label),
    "CEMarginalLoss binary": (L.CEMarginalLoss(use_sigmoid=True), zb, lb),
    "LabelMarginalLoss": (L.LabelMarginalLoss("kl", prior=[0.1, 0.2, 0.3, 0.4]), z, label),
    "LabelMarginalLoss binary": (L.LabelMarginalLoss(use_sigmoid=True), zb, lb),
    "ClasswiseDiceLoss": (L.ClasswiseDiceLoss(log=True), z, label),
    "GeneralizedDiceLoss": (L.GeneralizedDiceLoss(pooling="batch"), z, label),
    "DiceBiasLoss": (L.DiceBiasLoss(), z, label),
    "SoftmaxFocalLoss": (L.SoftmaxFocalLoss(), z, label),
    "SigmoidFocalLoss": (L.SigmoidFocalLoss(alpha=0.25), z, label),
    "softmax_focal_loss": (L.softmax_focal_loss, z, label),
    "sigmoid_focal_loss": (L.sigmoid_focal_loss, zb, lb),
    "predicted_proportions": (lambda a, b: L.predicted_proportions(a, b).sum(), z, label),
    "loss_decomposition": (
        lambda a, b: sum(v.sum() for v in L.loss_decomposition(a, b, temperature=2.0).values()),
        z,
        label,
    ),
}
out = {}
for name, (fn, logits, lab) in cases.items():
    x = logits.clone().requires_grad_()
    value = fn(x, lab)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all(), name
    assert x.grad.abs().sum() > 0, name
    out[name] = value.item()
out["gt_proportions"] = L.gt_proportions(label, 4)[0].sum().item()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps(dict(values=out, loaded=loaded)))
"""


def test_losses_import_and_run_where_mmseg_mmcv_mmengine_cannot_be_imported():
    out = subprocess.run(
        [sys.executable, "-c", CODE],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []
    assert len(got["values"]) == 15
