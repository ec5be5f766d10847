"""Installation script of ``mmseg_marginal``.

The heavy OpenMMLab stack (torch, mmcv with compiled ops) is installed first by
``tools/install.sh`` (see the README); the pins below are the versions this
package is tested with.
"""

from pathlib import Path

from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    exec(Path(__file__).with_name("mmseg_marginal").joinpath("version.py").read_text(), scope)
    return scope["__version__"]


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
    install_requires=[
        "torch>=2.0",
        "mmengine==0.10.7",
        "mmcv==2.1.0",
        "mmsegmentation==1.2.2",
        "mmpretrain==1.2.0",
        "ftfy",
        "regex",
        "cityscapesscripts",
        "matplotlib",
        "setuptools>=77,<81",  # mmengine's mmseg:: config scope imports pkg_resources
        "numpy",
        "opencv-python",
    ],
    extras_require={"tests": ["pytest", "ruff"]},
    license="Apache-2.0",
)
