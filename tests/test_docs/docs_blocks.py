"""The fenced blocks and links of README.md and docs/*.md, and the check markers of command blocks.

Every shell block (```` ```bash ````, ``sh``, ``shell``, ``console``) is preceded, on the line
before its fence (blank lines allowed in between), by an HTML comment that says how it is
checked; the comment is invisible in the rendered page:

``<!-- check: run [VAR=VALUE ...] [data=NAME[:K] ...] -->``
    ``tests/test_docs/test_command_blocks.py`` runs the block with bash in a scratch folder that
    mirrors the repository (``configs``, ``tools`` and ``results`` linked, ``mmseg_marginal``
    importable); ``VAR=VALUE`` replaces the block's own ``VAR=...`` line (a shorter training),
    ``data=NAME`` links ``data/NAME`` to the shared dataset ``NAME``, ``data=NAME:K`` to a tree
    of links to the first ``K`` files (by name) of each of its folders (a shorter run over the
    same layout: the images, annotations and masks of one sample sort alike).
``<!-- check: test tests/PATH.py::NAME -->``
    that test runs the same command (shortened where it trains); the check asserts it exists.
``<!-- check: install -->``
    installs the package (``pip install ...``): the check builds the wheel from the sources.
``<!-- check: ci -->``
    a command that CI runs itself (``.ci/run`` runs ``make test``, whose install step is also
    ``make demo``'s).
``<!-- check: gpu -->``, ``<!-- check: cityscapes -->`` (or both)
    needs a GPU or the Cityscapes data: not run; its shell syntax and the repository paths it
    names are checked.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
KINDS = {"run", "test", "install", "ci", "gpu", "cityscapes"}
MARKER = re.compile(r"^<!--\s*check:\s*(?P<spec>.*?)\s*-->$")
FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


def closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence`` (the same character, as many or more,
    nothing else; indented fences, as in list items, count)."""
    return re.fullmatch(rf"\s*{re.escape(fence[0])}{{{len(fence)},}}\s*", line) is not None


def pages() -> List[Path]:
    """README.md and every page of docs/ (not the build output)."""
    return [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


@dataclass
class Marker:
    """A parsed ``<!-- check: ... -->`` comment."""

    kinds: List[str]
    test: Optional[str] = None
    variables: Dict[str, str] = field(default_factory=dict)
    data: List[str] = field(default_factory=list)
    #: ``data=NAME:K``: the number of files kept in each folder of the dataset ``NAME``
    data_files: Dict[str, int] = field(default_factory=dict)


@dataclass
class Block:
    """One fenced block of a page: where it starts, its info string, its text, its marker."""

    page: Path
    line: int
    lang: str
    text: str
    marker: Optional[str]

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def parse_marker(spec: str) -> Marker:
    """``run N=2 data=drive`` -> Marker; raises ValueError naming what is wrong."""
    words = shlex.split(spec)
    marker = Marker(kinds=[])
    i = 0
    while i < len(words):
        word = words[i]
        if word == "test":
            if i + 1 >= len(words) or "::" not in words[i + 1]:
                raise ValueError(f"'test' needs a test id tests/PATH.py::NAME, got {spec!r}")
            marker.kinds.append("test")
            marker.test = words[i + 1]
            i += 2
            continue
        if word.startswith("data="):
            name, colon, count = word[len("data=") :].partition(":")
            if colon:
                if not count.isdigit() or int(count) < 1:
                    raise ValueError(f"data=NAME:K needs a whole K >= 1, got {word!r}")
                marker.data_files[name] = int(count)
            marker.data.append(name)
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S+", word):
            name, value = word.split("=", 1)
            marker.variables[name] = value
        elif word in KINDS:
            marker.kinds.append(word)
        else:
            raise ValueError(f"unknown check {word!r} in {spec!r}; known: {sorted(KINDS)}")
        i += 1
    if not marker.kinds:
        raise ValueError(f"no check kind in {spec!r}; known: {sorted(KINDS)}")
    if (marker.variables or marker.data) and "run" not in marker.kinds:
        raise ValueError(f"VAR=VALUE and data=NAME apply to 'run' only: {spec!r}")
    return marker


def blocks(page: Path) -> List[Block]:
    """The fenced blocks of a page, each with the marker comment that precedes its fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence = match.group("fence")
        start = i
        j = i + 1
        while j < len(lines) and not closes(lines[j], fence):
            j += 1
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = None
        if k >= 0:
            comment = MARKER.match(lines[k].strip())
            marker = comment.group("spec") if comment else None
        text = textwrap.dedent("\n".join(lines[start + 1 : j]) + "\n")
        found.append(Block(page, start + 1, match.group("lang").lower(), text, marker))
        i = j + 1
    return found


def all_blocks() -> List[Block]:
    return [b for page in pages() for b in blocks(page)]


def command_blocks() -> List[Block]:
    return [b for b in all_blocks() if b.lang in SHELL_LANGS]


def slug(title: str) -> str:
    """The anchor of a heading, as MyST (``myst_heading_anchors``) and GitHub make it."""
    text = re.sub(r"`([^`]*)`", r"\1", title.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set:
    """The heading anchors of a page (headings inside fenced blocks are not headings)."""
    result = set()
    in_fence = None
    for line in page.read_text(encoding="utf-8").splitlines():
        fence = FENCE.match(line)
        if fence and in_fence is None:
            in_fence = fence.group("fence")
            continue
        if in_fence is not None:
            if closes(line, in_fence):
                in_fence = None
            continue
        heading = HEADING.match(line)
        if heading:
            result.add(slug(heading.group("title")))
    return result


def links(page: Path) -> List[tuple]:
    """``(line, target)`` of the relative links of a page, outside fenced blocks."""
    result = []
    in_fence = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence and in_fence is None:
            in_fence = fence.group("fence")
            continue
        if in_fence is not None:
            if closes(line, in_fence):
                in_fence = None
            continue
        for match in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = match.group("target")
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, ...
                result.append((number, target))
    return result
