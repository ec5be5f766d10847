"""README.md and docs/*.md: every command block is marked with how it is checked and is checked
that way (conventions in ``docs_blocks.py``); every python block parses; relative links and
their anchors resolve; the README keeps its shape; the API page lists every registered
component."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from docs_blocks import (
    REPO,
    all_blocks,
    anchors,
    blocks,
    command_blocks,
    links,
    pages,
    parse_marker,
    slug,
)
from shared_data import require_shared_data


def _is_run(block) -> bool:
    try:
        return block.marker is not None and "run" in parse_marker(block.marker).kinds
    except ValueError:  # reported by test_every_command_block_says_how_it_is_checked
        return False


RUN_BLOCKS = [b for b in command_blocks() if _is_run(b)]
PATH_TOKEN = re.compile(
    r"(?<![\w/.$-])((?:configs|tools|tests|requirements|results)/[^\s'\"`;|)]+)"
)


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    # `python` in a block is this interpreter (the venv's), as after activating the venv
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def test_markers_parse_and_reject_nonsense():
    marker = parse_marker("run N=2 data=drive")
    assert marker.kinds == ["run"] and marker.variables == {"N": "2"}
    assert marker.data == ["drive"] and marker.data_files == {}
    marker = parse_marker("run data=drive:2 data=camvid")
    assert marker.data == ["drive", "camvid"] and marker.data_files == {"drive": 2}
    marker = parse_marker("cityscapes gpu")
    assert marker.kinds == ["cityscapes", "gpu"]
    assert parse_marker("test tests/a.py::b").test == "tests/a.py::b"
    for bad in [
        "",
        "runn",
        "test",
        "gpu N=2",
        "test tests/a.py",
        "run data=drive:0",
        "run data=a:x",
    ]:
        with pytest.raises(ValueError):
            parse_marker(bad)


def test_blocks_and_markers_are_found(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# T\n\n<!-- check: gpu -->\n\n```bash\necho a\n```\n\n```text\nout\n```\n"
        "````bash\n```\n````\n"
        "- item\n\n  <!-- check: ci -->\n  ```bash\n  make test\n  ```\n"
    )
    found = blocks(page)
    assert [(b.line, b.lang, b.marker) for b in found] == [
        (5, "bash", "gpu"),
        (9, "text", None),
        (12, "bash", None),
        (18, "bash", "ci"),
    ]
    assert found[0].text == "echo a\n" and found[2].text == "```\n"
    assert found[3].text == "make test\n"


def test_slugs_are_myst_anchors():
    assert slug("Field of view") == "field-of-view"
    assert slug("`ProportionMetric`: predicted against ground-truth proportions") == (
        "proportionmetric-predicted-against-ground-truth-proportions"
    )
    assert slug("Reproducing the paper (Cityscapes, Table 4)") == (
        "reproducing-the-paper-cityscapes-table-4"
    )


@pytest.mark.parametrize("block", command_blocks(), ids=lambda b: b.id)
def test_every_command_block_says_how_it_is_checked(block):
    assert block.marker is not None, (
        f"{block.id}: a command block needs a '<!-- check: KIND -->' line before its fence "
        "(run, test tests/PATH.py::NAME, install, ci, gpu, cityscapes; see "
        "tests/test_docs/docs_blocks.py)"
    )
    marker = parse_marker(block.marker)
    if marker.test:
        path, name = marker.test.split("::", 1)
        test_file = REPO / path
        assert test_file.is_file(), f"{block.id}: {path} does not exist"
        assert re.search(rf"^\s*def {re.escape(name)}\(", test_file.read_text(), re.M), (
            f"{block.id}: {path} has no test {name}"
        )
    proc = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert proc.returncode == 0, f"{block.id}: not valid bash: {proc.stderr}"
    for token in PATH_TOKEN.findall(block.text):
        if not re.search(r"[$*{\[]", token):
            assert (REPO / token).exists(), f"{block.id}: {token} does not exist"


@pytest.mark.parametrize("block", [b for b in all_blocks() if b.lang == "python"], ids=str)
def test_python_blocks_parse(block):
    try:
        ast.parse(block.text)
    except SyntaxError as err:
        pytest.fail(f"{block.id}: {err}")


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page):
    for line, target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path) if path else page
        assert resolved.exists(), f"{page.name}:{line}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}:{line}: no heading #{anchor}"


def test_every_page_is_in_the_toctree():
    index = (REPO / "docs" / "index.md").read_text()
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.S).group(1)
    listed = [line.strip() for line in toctree.splitlines() if line.strip()]
    listed = [entry for entry in listed if not entry.startswith(":")]
    stems = sorted(p.stem for p in (REPO / "docs").glob("*.md") if p.stem != "index")
    assert sorted(listed) == stems


def test_readme_shape():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200
    assert any("CEMarginalLoss" in line and "type=" in line for line in lines[:60])
    text = "\n".join(lines)
    assert re.search(r"```bibtex\n@\w+\{", text)
    assert "load average" not in text.lower()


def test_api_page_documents_every_registered_component():
    import mmengine.registry as mmengine_registry
    import mmseg.registry as mmseg_registry

    import mmseg_marginal  # noqa: F401  (registers)

    registered = set()
    for module in (mmseg_registry, mmengine_registry):
        for name in dir(module):
            registry = getattr(module, name)
            if isinstance(registry, mmengine_registry.Registry):
                for cls in registry.module_dict.values():
                    if getattr(cls, "__module__", "").startswith("mmseg_marginal"):
                        registered.add(cls.__name__)
    assert {"CEMarginalLoss", "ProportionMetric", "MarginalStatsHook"} <= registered
    api = (REPO / "docs" / "api.md").read_text()
    documented = set(
        re.findall(r"\.\. auto(?:class|exception):: mmseg_marginal\.[\w.]*?(\w+)$", api, re.M)
    )
    assert registered <= documented, f"not in docs/api.md: {sorted(registered - documented)}"


def _sandbox(tmp_path: Path, marker) -> Path:
    for name in ("configs", "tools", "results"):
        (tmp_path / name).symlink_to(REPO / name)
    for name in marker.data:
        (tmp_path / "data").mkdir(exist_ok=True)
        source = require_shared_data(name)
        if name in marker.data_files:
            _link_first_files(source, tmp_path / "data" / name, marker.data_files[name])
        else:
            (tmp_path / "data" / name).symlink_to(source)
    return tmp_path


def _link_first_files(source: Path, target: Path, count: int) -> None:
    """``target``: the folders of ``source``, each with links to its first ``count`` files."""
    for folder, _, files in os.walk(source, followlinks=True):
        mirror = target / Path(folder).relative_to(source)
        mirror.mkdir(parents=True, exist_ok=True)
        for name in sorted(files)[:count]:
            (mirror / name).symlink_to(Path(folder) / name)


def test_first_files_of_each_folder_are_linked(tmp_path):
    source = tmp_path / "source"
    for folder in ("images/val", "annotations/val"):
        (source / folder).mkdir(parents=True)
        for stem in ("03", "01", "02"):
            (source / folder / f"{stem}.png").write_text(stem)
    (source / "README.md").write_text("readme")
    _link_first_files(source, tmp_path / "linked", 2)
    linked = sorted(
        p.relative_to(tmp_path / "linked").as_posix() for p in (tmp_path / "linked").rglob("*.*")
    )
    assert linked == [
        "README.md",
        "annotations/val/01.png",
        "annotations/val/02.png",
        "images/val/01.png",
        "images/val/02.png",
    ]
    assert (tmp_path / "linked" / "images" / "val" / "02.png").read_text() == "02"


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=lambda b: b.id)
def test_run_blocks_run(block, tmp_path):
    marker = parse_marker(block.marker)
    text = block.text
    for name, value in marker.variables.items():
        text, count = re.subn(rf"^{name}=\S+", f"{name}={value}", text, flags=re.M)
        assert count == 1, f"{block.id}: no line '{name}=...' to shorten"
    if (
        "python -m mmseg_marginal" in text
        and not (REPO / "mmseg_marginal" / "__main__.py").exists()
    ):
        pytest.skip("python -m mmseg_marginal: no mmseg_marginal/__main__.py in this checkout")
    cwd = _sandbox(tmp_path, marker)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", text],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{block.id} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.slow
def test_install_blocks_build_the_package(tmp_path):
    """``pip install .`` from a clone: the sources build a wheel holding the package."""
    installs = [b for b in command_blocks() if b.marker and "install" in b.marker.split()]
    assert installs, "no install block left: drop this test"
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "README.md", "LICENSE", "pyproject.toml", "mmseg_marginal"):
        (src / name).symlink_to(REPO / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("mmseg_marginal-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mmseg_marginal/__init__.py" in names
    assert "mmseg_marginal/losses/ce_marginal.py" in names


@pytest.mark.parametrize("iters", [1, 2, 3, 50, 51, 100, 1500])
def test_the_drive_shortening_gives_valid_schedulers_for_any_length(iters):
    """The DRIVE shortening of docs/datasets.md, for N from 1 to the full 1,500: its
    ``--cfg-options`` build mmengine's schedulers (each ends after it begins), training runs
    N iterations, the warm-up ends where the decay begins and the decay ends at N."""
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.optim.scheduler import LinearLR, PolyLR

    (block,) = [b for b in command_blocks() if "param_scheduler.1.begin" in b.text]
    text = re.sub(r"^N=\S+", f"N={iters}", block.text, flags=re.M)
    stub = "python() { printf '%s\\n' \"$@\"; }\n"  # print the arguments instead of training
    proc = subprocess.run(["bash", "-c", stub + text], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    args = proc.stdout.splitlines()
    config = REPO / args[1]
    options = args[args.index("--cfg-options") + 1 :]
    parsed: dict = {}
    for option in options:
        key, value = option.split("=", 1)
        parsed[key] = DictAction._parse_iterable(value)
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(parsed)
    assert cfg.train_cfg.max_iters == iters and cfg.train_cfg.val_interval == iters
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warmup, poly = cfg.param_scheduler
    assert warmup.type == "LinearLR" and poly.type == "PolyLR"
    kwargs = {k: v for k, v in warmup.items() if k != "type"}
    LinearLR(optimizer, **kwargs)  # raises when end <= begin
    PolyLR(optimizer, **{k: v for k, v in poly.items() if k != "type"})
    assert warmup.begin == 0 and warmup.end == poly.begin <= iters
    assert poly.end == (iters if iters > warmup.end else warmup.end + 1)
    assert warmup.end == (50 if iters >= 100 else (iters + 1) // 2)
