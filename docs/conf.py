"""Sphinx configuration of the mmseg_marginal documentation (MyST markdown pages).

Built by ``make docs``: ``sphinx-build -W --keep-going -b html docs docs/_build/html``, so every
warning (a broken link between pages, a missing heading anchor, a docstring that does not parse,
an unresolved cross reference) fails the build.
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from mmseg_marginal import __version__  # noqa: E402

project = "mmseg_marginal"
author = "mmseg_marginal contributors"
copyright = "2026, mmseg_marginal contributors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: headings down to ### get anchors, so [text](page.md#anchor) links are checked;
# $...$ and $$...$$ are maths.
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath", "colon_fence"]

# autodoc: Google-style docstrings (napoleon); signatures keep their type hints.
autodoc_default_options = {"show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Every cross reference must resolve; only the dependencies' own types, which this site does
# not document (no network for intersphinx), are exempt.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|mmengine|mmseg|mmcv|numpy|np|scipy|matplotlib|collections|typing)\..*"),
    (r"py:.*", r"(Tensor|Module|Path|Any|Optional|Union|Sequence|Mapping|Callable|Iterable)"),
    (r"py:class", r"(types|pathlib|argparse|collections\.abc)\..*"),
    (r"py:class", r"(nn\.Module|Config|ConfigDict|DataLoader|pathlib\.Path|BaseDataset|Runner)"),
    # napoleon reads the words of "int, optional" or "sequence of float" as types
    (r"py:class", r"(optional|sequence|array|array-like|callable)"),
]

html_theme = "furo"
html_title = f"mmseg_marginal {release}"
html_static_path: list = []
