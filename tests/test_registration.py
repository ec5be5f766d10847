"""`import mmseg_marginal` registers every component in mmseg's registries, without collisions."""

import subprocess
import sys

from mmengine.config import Config
from mmseg.registry import DATASETS, HOOKS, LOOPS, METRICS, MODELS

import mmseg_marginal

EXPECTED = {
    MODELS: [
        "LabelMarginalLoss",
        "CEMarginalLoss",
        "ClasswiseDiceLoss",
        "GeneralizedDiceLoss",
        "SoftmaxFocalLoss",
        "DiceBiasLoss",
    ],
    METRICS: ["ProportionMetric"],
    DATASETS: ["CamVidDataset", "SyntheticStreetsDataset"],
    HOOKS: ["MarginalStatsHook"],
    LOOPS: ["FastResumeIterBasedTrainLoop"],
}


def test_every_component_is_registered_by_this_package():
    for registry, names in EXPECTED.items():
        for name in names:
            cls = registry.get(name)
            assert cls is not None, f"{name} is not in mmseg's {registry.name} registry"
            assert cls.__module__.startswith("mmseg_marginal."), (name, cls.__module__)


def test_no_name_shadows_an_mmseg_component():
    code = (
        "from mmseg.registry import DATASETS, HOOKS, LOOPS, METRICS, MODELS\n"
        "from mmseg.utils import register_all_modules\n"
        "register_all_modules()\n"
        "regs = (DATASETS, HOOKS, LOOPS, METRICS, MODELS)\n"
        "before = [dict(r.module_dict) for r in regs]\n"
        "import mmseg_marginal\n"
        "for r, old in zip(regs, before):\n"
        "    for name, cls in old.items():\n"
        "        assert r.module_dict[name] is cls, name\n"
        "    for name in set(r.module_dict) - set(old):\n"
        "        assert r.module_dict[name].__module__.startswith('mmseg_marginal.'), name\n"
        "print(sum(len(r.module_dict) - len(o) for r, o in zip(regs, before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= sum(len(v) for v in EXPECTED.values())


def test_fresh_process_registers_on_import_only():
    code = (
        "from mmseg.registry import MODELS, METRICS\n"
        "import mmseg.models\n"
        "assert MODELS.get('CEMarginalLoss') is None\n"
        "import mmseg_marginal\n"
        "assert MODELS.get('CEMarginalLoss') is not None\n"
        "assert METRICS.get('ProportionMetric') is not None\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_custom_imports_in_a_stock_config_builds_our_loss():
    cfg = Config(
        dict(
            custom_imports=dict(imports=["mmseg_marginal"], allow_failed_imports=False),
            loss=dict(type="CEMarginalLoss", penalty="kl", marginal_weight=0.1),
        )
    )
    loss = MODELS.build(cfg.loss)
    assert loss.loss_name.startswith("loss_")
    assert mmseg_marginal.__version__
