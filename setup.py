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

from pathlib import Path

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    exec(Path(__file__).with_name("mmseg_marginal").joinpath("version.py").read_text(), scope)
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
EXTRAS_REQUIRE["tests"] += ["packaging", "pytest", "ruff"]

setup(
    name="mmseg_marginal",
    version=read_version(),
    description=(
        "Label-marginal losses for mmsegmentation: 'The hidden label-marginal biases "
        "of segmentation losses' (Liu, Dolz, Galdran, Kobbi, Ben Ayed)"
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(exclude=("tests", "tests.*", "configs", "tools")),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
)
