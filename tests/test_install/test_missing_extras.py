"""A feature whose optional package is missing says which extra to install, in one line."""

import os
import sys
from pathlib import Path

import pytest

from mmseg_marginal.extras import MissingExtraError, explain_import_error, require_extra

REPO = Path(__file__).resolve().parents[2]


def test_require_extra_names_the_extra(monkeypatch):
    # import matplotlib now fails, also where an earlier test of this process imported it
    for name in ["matplotlib"] + [m for m in sys.modules if m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError) as err:
        require_extra("matplotlib.pyplot", "the per-class plot")
    assert str(err.value) == (
        "the per-class plot needs matplotlib, which is not installed: "
        "pip install 'mmseg_marginal[analysis]' (or pip install matplotlib)"
    )
    assert isinstance(err.value, ValueError)  # the tools print ValueErrors as one line
    assert require_extra("json", "x") is sys.modules["json"]  # installed: the module itself


def test_missing_dependency_of_an_extra_is_not_blamed_on_the_extra(monkeypatch):
    """Only the extra's own package is reported; a broken install underneath stays visible."""
    monkeypatch.setitem(sys.modules, "not_an_extra_dep", None)
    with pytest.raises(ModuleNotFoundError) as err:
        require_extra("not_an_extra_dep", "x")
    assert not isinstance(err.value, MissingExtraError)


def test_explain_follows_mmengines_reraise():
    """mmengine turns a failed custom_imports entry into ImportError('Failed to import ...')."""
    try:
        try:
            raise ModuleNotFoundError("No module named 'mmpretrain'", name="mmpretrain")
        except ImportError:
            raise ImportError("Failed to import mmpretrain.models") from None
    except ImportError as exc:
        outer = exc
    assert outer.__cause__ is None and outer.__context__ is not None
    missing = explain_import_error(outer, "the config c.py")
    assert missing is not None
    assert "pip install 'mmseg_marginal[mmpretrain]'" in str(missing)
    setuptools_81 = ModuleNotFoundError("No module named 'pkg_resources'", name="pkg_resources")
    assert "pip install 'setuptools<81'" in str(explain_import_error(setuptools_81, "c"))
    assert explain_import_error(ModuleNotFoundError("x", name="yaml"), "c") is None


def run_blocked(fresh_python, blocked: str, script: Path, *args: str):
    """Run a tool as ``python script args`` with the package ``blocked`` made unimportable, in
    a fresh process of ``fresh_python``.

    As ``python script`` does, the script's folder comes first on the import path (here through
    ``PYTHONPATH``), then the repository.
    """
    code = (
        "import runpy, sys\n"
        f"sys.modules[{blocked!r}] = None\n"
        f"sys.argv = {[str(script), *args]!r}\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(script.parent), str(REPO), env.get("PYTHONPATH", "")])
    return fresh_python.run(code=code, env=env, cwd=REPO, timeout=300)


def test_plot_tool_without_matplotlib(tmp_path, fresh_python):
    proc = run_blocked(
        fresh_python,
        "matplotlib",
        REPO / "tools" / "analysis" / "plot_penalties.py",
        "--out",
        str(tmp_path / "p.png"),
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: plot_penalties needs matplotlib, which is not installed: "
        "pip install 'mmseg_marginal[analysis]' (or pip install matplotlib)"
    )
    assert not (tmp_path / "p.png").exists()


def test_train_tool_with_an_mmpretrain_config_without_mmpretrain(tmp_path, fresh_python):
    config = (
        REPO
        / "configs/fpn_marginal/fpn_convnext-t-in1k-pre_4xb2-37.2k_cityscapes-512x1024_ce-l1.py"
    )
    proc = run_blocked(
        fresh_python,
        "mmpretrain",
        REPO / "tools" / "train.py",
        str(config),
        "--work-dir",
        str(tmp_path),
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: the config {config} needs mmpretrain, which is not installed: "
        "pip install 'mmseg_marginal[mmpretrain]' (or pip install mmpretrain)"
    ]
