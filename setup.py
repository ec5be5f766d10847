"""Installation script of ``mmseg_marginal``.

``install_requires`` holds ranges that admit the stacks mmseg 1.x runs on, so that
``pip install mmseg_marginal`` into a working mmseg environment installs only what is missing
and replaces nothing. The exact versions this project is tested with are in
``requirements/constraints.txt``, which ``tools/install.sh`` passes to pip (``-c``).

Not declared, on purpose:

* ``setuptools``: mmengine resolves ``mmseg::`` config paths with ``pkg_resources``, which
  setuptools >= 81 no longer ships. A requirement ``setuptools<81`` here would downgrade the
  setuptools of every environment the package is installed into, so it is pinned only in the
  constraints file; the tools say in one line when it is missing (see the README).
* ``opencv-python``: ``cv2`` comes with mmengine (``opencv-python``); many environments have
  ``opencv-python-headless`` instead, next to which a second ``cv2`` would be installed.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: Top-level folders shipped inside the package as ``mmseg_marginal/.mim/<name>``, the layout
#: of OpenMMLab packages: mmengine resolves ``mmseg_marginal::<path>`` config bases there and
#: openmim finds ``.mim/tools/train.py``.
MIM_FOLDERS = ("configs", "tools")
#: Files under those folders that are not shipped (install.sh sets up a clone).
MIM_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "install.sh")
#: mmengine reads ``.mim/model-index.yml`` before it falls back to ``.mim/configs/<path>``; an
#: index without model entries makes every ``mmseg_marginal::`` path such a fallback.
MODEL_INDEX = "# configs are looked up as .mim/configs/<path>\nImport: []\n"


class BuildPyWithMim(build_py):
    """``build_py`` that also copies ``configs/`` and ``tools/`` into ``mmseg_marginal/.mim``.

    The repository keeps one copy, at the top level; the wheel gets theirs at build time. An
    editable install (``pip install -e .``) gets none: mmengine and openmim look for
    ``<site-packages>/mmseg_marginal/.mim``, which an editable install does not have, and the
    package's own commands use the top-level folders of the clone instead.
    """

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        mim = Path(self.build_lib) / "mmseg_marginal" / ".mim"
        for name in MIM_FOLDERS:
            source = HERE / name
            if not source.is_dir():
                raise FileNotFoundError(f"cannot ship {name}/: {source} does not exist")
            target = mim / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, ignore=MIM_IGNORE)
        (mim / "model-index.yml").write_text(MODEL_INDEX)


def read_version() -> str:
    scope: dict = {}
    exec((HERE / "mmseg_marginal" / "version.py").read_text(), scope)
    return scope["__version__"]


INSTALL_REQUIRES = [
    "torch>=1.13",
    # mmseg 1.x's own limits (its `mim` extra: mmcv>=2.0.0rc4,<2.2.0, mmengine>=0.5.0,<1.0.0).
    # mmengine 0.7.0 and mmseg 1.0.0 have every name this package imports from them;
    # FastResumeIterBasedTrainLoop follows the change of mmengine's resume in 0.10.3.
    "mmcv>=2.0.0,<2.2.0",
    "mmengine>=0.7.0,<1.0.0",
    "mmsegmentation>=1.0.0,<1.3.0",
    # mmseg >= 1.1 imports ftfy and regex in mmseg.utils but declares them only as an extra
    "ftfy",
    "regex",
    "numpy",
    "prettytable",
    "scipy",  # BoundaryMetric's distance transforms (mmseg requires it as well)
]

EXTRAS_REQUIRE = {
    "analysis": ["matplotlib"],
    "cityscapes": ["cityscapesscripts"],
    "mmpretrain": ["mmpretrain>=1.0.0,<2.0.0"],
    # the documentation site (make docs): Sphinx with MyST markdown and the furo theme
    "docs": ["sphinx>=7.2", "myst-parser>=2.0", "furo"],
}
EXTRAS_REQUIRE["all"] = sorted(
    {req for name, reqs in EXTRAS_REQUIRE.items() if name != "docs" for req in reqs}
)
# the test suite exercises every extra, plus the test and lint tools and the docs build
EXTRAS_REQUIRE["tests"] = EXTRAS_REQUIRE["all"] + EXTRAS_REQUIRE["docs"]
# pytest-xdist: `make test` runs the suite on two worker processes
EXTRAS_REQUIRE["tests"] += ["build", "packaging", "pytest", "pytest-xdist", "ruff", "twine"]

CLASSIFIERS = [
    "Development Status :: 4 - Beta",
    "Intended Audience :: Science/Research",
    "Intended Audience :: Developers",
    "Operating System :: POSIX :: Linux",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
    "Programming Language :: Python :: 3.10",
    "Programming Language :: Python :: 3.11",
    "Topic :: Scientific/Engineering :: Artificial Intelligence",
    "Topic :: Scientific/Engineering :: Image Recognition",
]

setup(
    name="mmseg_marginal",
    version=read_version(),
    description=(
        "Label-marginal losses for mmsegmentation: 'The hidden label-marginal biases "
        "of segmentation losses' (Liu, Dolz, Galdran, Kobbi, Ben Ayed)"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    keywords="semantic segmentation, loss functions, class imbalance, mmsegmentation",
    project_urls={
        "Paper": "https://arxiv.org/abs/2104.08717",
        "mmsegmentation": "https://github.com/open-mmlab/mmsegmentation",
    },
    classifiers=CLASSIFIERS,
    python_requires=">=3.10",
    packages=find_packages(exclude=("tests", "tests.*", "configs", "tools")),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license_expression="Apache-2.0",
    license_files=["LICENSE"],
    cmdclass={"build_py": BuildPyWithMim},
    entry_points={"console_scripts": ["mmseg_marginal = mmseg_marginal.cli:main"]},
    zip_safe=False,
)
