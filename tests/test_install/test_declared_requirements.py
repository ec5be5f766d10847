"""The requirements setup.py declares admit the stacks mmseg 1.x users have.

A plugin must install into an existing mmseg environment without replacing its torch, mmcv,
mmengine or mmseg. This test reads what setup.py really passes to ``setup()`` and checks it,
with ``packaging``'s own specifier logic (the logic pip uses), against a table of real releases.
"""

import ast
import re
import runpy
import sys
from pathlib import Path

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mmseg_marginal.extras import EXTRAS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def declared() -> dict:
    """The keyword arguments setup.py passes to ``setuptools.setup``."""
    captured: dict = {}
    real_setup = setuptools.setup
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        runpy.run_path(str(REPO / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = real_setup
    return captured


def by_name(reqs: list) -> dict:
    parsed = [Requirement(r) for r in reqs]
    return {canonicalize_name(r.name): r for r in parsed}


# Releases users run mmseg 1.x with (PyPI versions; CUDA builds carry a local label).
REAL_WORLD = {
    "torch": ["1.13.1", "2.0.1", "2.1.2+cu121", "2.4.0", "2.5.1", "2.13.0+cpu"],
    "mmcv": ["2.0.0", "2.0.1", "2.1.0"],
    "mmengine": ["0.7.0", "0.7.4", "0.8.5", "0.10.3", "0.10.7"],
    "mmsegmentation": ["1.0.0", "1.1.2", "1.2.1", "1.2.2"],
}
# Whole environments, each as pip would see it.
STACKS = [
    ("torch 1.13 stack", {"torch": "1.13.1", "mmcv": "2.0.1", "mmengine": "0.7.4",
                          "mmsegmentation": "1.0.0"}),
    ("torch 2.0 stack", {"torch": "2.0.1", "mmcv": "2.0.1", "mmengine": "0.8.5",
                         "mmsegmentation": "1.1.2"}),
    ("typical CUDA 12.1 stack", {"torch": "2.1.2+cu121", "mmcv": "2.0.1",
                                 "mmengine": "0.10.3", "mmsegmentation": "1.2.1"}),
    ("torch 2.4 stack", {"torch": "2.4.0", "mmcv": "2.1.0", "mmengine": "0.10.7",
                         "mmsegmentation": "1.2.2"}),
    ("this project's stack", {"torch": "2.13.0+cpu", "mmcv": "2.1.0", "mmengine": "0.10.7",
                              "mmsegmentation": "1.2.2"}),
]  # fmt: skip
# Releases that do not work with mmseg 1.x (mmseg's own limits) must stay out.
REJECTED = {
    "mmcv": ["1.7.2", "2.2.0"],
    "mmengine": ["1.0.0"],
    "mmsegmentation": ["0.30.0", "1.3.0"],
}


@pytest.mark.parametrize("name", sorted(REAL_WORLD))
def test_every_real_world_release_is_admitted(declared, name):
    req = by_name(declared["install_requires"])[name]
    for version in REAL_WORLD[name]:
        assert req.specifier.contains(Version(version), prereleases=True), (name, version)


@pytest.mark.parametrize("label, stack", STACKS, ids=[label for label, _ in STACKS])
def test_real_world_stacks_install_without_replacing_anything(declared, label, stack):
    reqs = by_name(declared["install_requires"])
    refused = [
        f"{name} {version} (declared {reqs[name].specifier})"
        for name, version in stack.items()
        if not reqs[name].specifier.contains(Version(version), prereleases=True)
    ]
    assert not refused, f"{label}: pip would replace {refused}"


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_releases_outside_mmseg_1x_limits_are_refused(declared, name):
    req = by_name(declared["install_requires"])[name]
    for version in REJECTED[name]:
        assert not req.specifier.contains(Version(version)), (name, version)


def test_no_exact_pins_and_no_heavy_optional_packages(declared):
    reqs = by_name(declared["install_requires"])
    for req in reqs.values():
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), req
    # optional features, and setuptools (a pin would downgrade the user's), stay out
    for heavy in ("mmpretrain", "cityscapesscripts", "matplotlib", "setuptools", "opencv-python"):
        assert heavy not in reqs, heavy


def test_extras_bring_what_the_features_import(declared):
    extras = {name: by_name(reqs) for name, reqs in declared["extras_require"].items()}
    for module, (dist, extra) in EXTRAS.items():
        assert canonicalize_name(dist) in extras[extra], (module, extra)
        assert canonicalize_name(dist) in extras["tests"], (module, "tests")
    for tool in ("pytest", "pytest-xdist", "ruff", "packaging"):
        assert tool in extras["tests"]


def test_constraints_pin_versions_inside_the_declared_ranges(declared):
    """The tested stack (tools/install.sh -c) is one that setup.py admits."""
    pins = {}
    for line in (REPO / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = Version(spec.version)
    all_reqs = dict(by_name(declared["install_requires"]))
    for reqs in declared["extras_require"].values():
        all_reqs.update(by_name(reqs))
    for name in ("mmcv", "mmengine", "mmsegmentation", "mmpretrain", "cityscapesscripts"):
        assert name in pins, name
    for name, version in pins.items():
        if name in all_reqs:
            assert all_reqs[name].specifier.contains(version, prereleases=True), (name, version)
    # the mmseg:: config scope needs pkg_resources: the pinned setuptools must still ship it
    assert pins["setuptools"] < Version("81")


def test_install_script_uses_the_constraints_and_reinstalls_when_they_change():
    script = (REPO / "tools" / "install.sh").read_text()
    key_line = next(line for line in script.splitlines() if line.startswith("KEY="))
    assert '"$CONSTRAINTS"' in key_line
    assert "CONSTRAINTS=$ROOT/requirements/constraints.txt" in script
    assert re.search(r'install .*-c "\$CONSTRAINTS" -e "\$ROOT\[tests\]"', script)


def _imported(node: ast.AST) -> set:
    """Top-level modules that an ``import``/``from`` statement imports."""
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return {node.module.split(".")[0]}
    return set()


def _third_party_imports(path: Path) -> set:
    """Top-level third-party modules imported anywhere in a file."""
    names = set().union(*(_imported(node) for node in ast.walk(ast.parse(path.read_text()))))
    return names - set(sys.stdlib_module_names)


def _unguarded_extra_imports(path: Path) -> set:
    """Extras' packages imported outside a function that first calls ``require_extra`` on them."""
    tree = ast.parse(path.read_text())
    guarded_nodes = set()
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        required = {
            call.args[0].value.split(".")[0]
            for call in ast.walk(func)
            if isinstance(call, ast.Call)
            and getattr(call.func, "id", getattr(call.func, "attr", None)) == "require_extra"
            and call.args
            and isinstance(call.args[0], ast.Constant)
        }
        guarded_nodes.update(
            id(node) for node in ast.walk(func) if _imported(node) and _imported(node) <= required
        )
    return set().union(
        *(_imported(node) & set(EXTRAS) for node in ast.walk(tree) if id(node) not in guarded_nodes)
    )


def test_optional_packages_are_imported_only_through_require_extra(tmp_path):
    """Every use of an extra's package goes through the one-line error naming the extra."""
    files = sorted((REPO / "mmseg_marginal").rglob("*.py")) + sorted((REPO / "tools").rglob("*.py"))
    assert len(files) > 20
    offenders = {
        str(f.relative_to(REPO)): sorted(_unguarded_extra_imports(f))
        for f in files
        if _unguarded_extra_imports(f)
    }
    assert offenders == {}
    # the check finds an import without the guard, and accepts one behind it
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def plot():\n    import matplotlib.pyplot\n\n"
        "def table():\n    require_extra('cityscapesscripts', 'x')\n"
        "    import cityscapesscripts.helpers\n"
    )
    assert _unguarded_extra_imports(probe) == {"matplotlib"}
    # and what the package itself imports is declared (or comes with a declared package)
    package_imports = set().union(
        *(_third_party_imports(f) for f in (REPO / "mmseg_marginal").rglob("*.py"))
    )
    provided = {
        "torch",
        "mmcv",
        "mmengine",
        "mmseg",
        "numpy",
        "prettytable",
        "scipy",
        "mmseg_marginal",
    }
    provided.add("cv2")  # opencv-python, a requirement of mmengine
    # the [analysis] extra: imported only behind require_extra (the offenders check above)
    provided.add("matplotlib")
    assert package_imports <= provided, package_imports - provided
