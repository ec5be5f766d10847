"""`import mmseg_marginal` registers every component in mmseg's registries, without collisions."""

import json

import pytest
import torch
from mmseg.registry import DATASETS, HOOKS, LOOPS, METRICS, MODELS

import mmseg_marginal  # noqa: F401 - registers the components
from mmseg_marginal.losses import CEMarginalLoss

EXPECTED = {
    MODELS: [
        "LabelMarginalLoss",
        "CEMarginalLoss",
        "ClasswiseDiceLoss",
        "GeneralizedDiceLoss",
        "SoftmaxFocalLoss",
        "DiceBiasLoss",
        "SMPFPNHead",
    ],
    METRICS: ["ProportionMetric"],
    DATASETS: ["CamVidDataset", "SyntheticStreetsDataset"],
    HOOKS: ["MarginalStatsHook", "MainProcessLoggerHook"],
    LOOPS: ["FastResumeIterBasedTrainLoop"],
}


def test_every_component_is_registered_by_this_package():
    for registry, names in EXPECTED.items():
        for name in names:
            cls = registry.get(name)
            assert cls is not None, f"{name} is not in mmseg's {registry.name} registry"
            assert cls.__module__.startswith("mmseg_marginal."), (name, cls.__module__)


NO_SHADOW_CODE = (
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

REGISTERS_ON_IMPORT_CODE = (
    "from mmseg.registry import MODELS, METRICS\n"
    "import mmseg.models\n"
    "assert MODELS.get('CEMarginalLoss') is None\n"
    "import mmseg_marginal\n"
    "assert MODELS.get('CEMarginalLoss') is not None\n"
    "assert METRICS.get('ProportionMetric') is not None\n"
    "print('ok')\n"
)

CUSTOM_IMPORTS_CONFIG = """\
custom_imports = dict(imports=["mmseg_marginal"], allow_failed_imports=False)
default_scope = "mmseg"
loss = dict(type="CEMarginalLoss", penalty="kl", marginal_weight=0.25, temperature=2.0,
            target="batch", class_weight=[1.0, 2.0, 0.5], loss_weight=0.5,
            loss_name="loss_from_cfg", compile=False)
"""

CUSTOM_IMPORTS_CODE = """\
import json, sys
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
assert "mmseg_marginal" not in sys.modules
cfg = Config.fromfile(sys.argv[1])  # processes custom_imports, as mmengine's Runner relies on
assert "mmseg_marginal" in sys.modules
init_default_scope(cfg.default_scope)
from mmseg.registry import MODELS
loss = MODELS.build(cfg.loss)
g = torch.Generator().manual_seed(0)
z = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
label = torch.randint(0, 3, (2, 4, 5), generator=g)
label[0, 0] = 255
print(json.dumps(dict(
    cls=type(loss).__module__ + "." + type(loss).__name__, name=loss.loss_name,
    penalty=loss.penalty, lam=loss.marginal_weight, tau=loss.temperature, target=loss.target,
    class_weight=list(loss.class_weight), loss_weight=loss.loss_weight,
    value=loss(z, label).item())))
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, fresh_python) -> dict:
    """Each script of this module run in its own fresh process (``mmseg_marginal`` not yet
    imported; mmseg's registries as mmseg alone fills them)."""
    cfg_file = tmp_path_factory.mktemp("registration") / "loss_cfg.py"
    cfg_file.write_text(CUSTOM_IMPORTS_CONFIG)
    return {
        "no_shadow": fresh_python.run(code=NO_SHADOW_CODE),
        "registers_on_import": fresh_python.run(code=REGISTERS_ON_IMPORT_CODE),
        "custom_imports": fresh_python.run(None, cfg_file, code=CUSTOM_IMPORTS_CODE),
    }


def test_no_name_shadows_an_mmseg_component(fresh):
    out = fresh["no_shadow"]
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= sum(len(v) for v in EXPECTED.values())


def test_fresh_process_registers_on_import_only(fresh):
    out = fresh["registers_on_import"]
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_custom_imports_in_a_config_file_builds_our_loss(fresh):
    """A stock mmseg set-up (``Config.fromfile`` with ``custom_imports``, then mmseg's registry
    under the default scope) in a fresh process builds the loss with the config's arguments."""
    out = fresh["custom_imports"]
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["cls"] == "mmseg_marginal.losses.ce_marginal.CEMarginalLoss"
    assert got["name"] == "loss_from_cfg"
    assert (got["penalty"], got["lam"], got["tau"], got["target"]) == ("kl", 0.25, 2.0, "batch")
    assert (got["class_weight"], got["loss_weight"]) == ([1.0, 2.0, 0.5], 0.5)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    label = torch.randint(0, 3, (2, 4, 5), generator=g)
    label[0, 0] = 255
    ref = CEMarginalLoss(
        "kl", marginal_weight=0.25, temperature=2.0, target="batch",
        class_weight=[1.0, 2.0, 0.5], loss_weight=0.5, compile=False,
    )(z, label)  # fmt: skip
    assert got["value"] == ref.item()
