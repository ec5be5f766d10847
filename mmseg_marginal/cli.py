"""``python -m mmseg_marginal`` (console script ``mmseg_marginal``): one entry to the tools.

Each command runs one of the shipped ``tools/*.py`` scripts (see
:mod:`mmseg_marginal.shipped`) with the rest of the command line, so the scripts stay the one
implementation and a clone's ``python tools/train.py ...`` behaves the same. A config is given
as a file path or by the name of a shipped config (``python -m mmseg_marginal configs``
lists them), for example::

    python -m mmseg_marginal configs drive
    python -m mmseg_marginal train unet-s4-c16_1xb8-1.5k_drive-fov-64x64_bce-l1 \\
        --cfg-options train_dataloader.dataset.dataset.data_root=data/drive
    python -m mmseg_marginal test CONFIG work_dirs/.../iter_1500.pth
    python -m mmseg_marginal demo --iters 50
"""

from __future__ import annotations

import builtins
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from .shipped import list_configs, resolve_config, shipped_root, tools_dir


@dataclass(frozen=True)
class Command:
    """A command: the tool it runs and where its config argument is."""

    script: str  # path relative to tools/
    summary: str
    config: str = "first"  # "first": the first argument; "--config": that option's value; ""


COMMANDS: Dict[str, Command] = {
    "train": Command("train.py", "train a config with mmseg's Runner (mmseg's train flags)"),
    "test": Command("test.py", "test a checkpoint on a config (mmseg's test flags)"),
    "demo": Command(
        "demo.py", "the built-in demo: CE, 1 - Dice and CE + L1 on generated data", "--config"
    ),
    "compare": Command(
        "compare_losses.py", "train, test and tabulate a list of losses on one config", "--config"
    ),
    "benchmark": Command("benchmark_losses.py", "time and memory of the losses", ""),
    "submit": Command("cityscapes_submission.py", "Cityscapes test-server zip of a checkpoint"),
    "region-proportions": Command(
        "analysis/region_proportions.py", "per-class region proportions of a dataset config"
    ),
    "results-table": Command(
        "analysis/results_table.py", "per-class IoU of work dirs under the mRegProp row", ""
    ),
    "plot-penalties": Command(
        "analysis/plot_penalties.py", "label-marginal penalties against the predicted share", ""
    ),
}
PROG = "mmseg_marginal"


def usage() -> str:
    """The help text of the command line."""
    width = max(len(name) for name in COMMANDS) + 2
    lines = [
        f"usage: {PROG} COMMAND [ARGS ...]   (or python -m {PROG} COMMAND ...)",
        "",
        "Label-marginal losses for mmsegmentation: the shipped configs and tools.",
        "",
        "commands:",
        f"  {'configs'.ljust(width)}list the shipped configs (only those containing every WORD "
        "given)",
        f"  {'path'.ljust(width)}print the file path of a shipped config (no argument: the "
        "folder of configs/ and tools/)",
    ]
    lines += [f"  {name.ljust(width)}{cmd.summary}" for name, cmd in COMMANDS.items()]
    lines += [
        "",
        "A CONFIG is a file path or the name of a shipped config (with or without its folder",
        "and .py). `COMMAND -h` shows the flags of a command; train and test forward mmseg's",
        "--cfg-options, --work-dir, --resume (train) and --launcher.",
    ]
    return "\n".join(lines)


def _with_config_resolved(args: List[str], where: str) -> List[str]:
    """``args`` with the config argument replaced by its path (see :func:`resolve_config`)."""
    args = list(args)
    if where == "first":
        if args and not args[0].startswith("-"):
            args[0] = resolve_config(args[0])
    elif where:
        for i, arg in enumerate(args):
            if arg == where and i + 1 < len(args):
                args[i + 1] = resolve_config(args[i + 1])
            elif arg.startswith(where + "="):
                args[i] = f"{where}={resolve_config(arg.split('=', 1)[1])}"
    return args


def run_tool(name: str, args: Sequence[str]) -> int:
    """Run the tool of command ``name`` with ``args``, as ``python tools/<script> args`` would.

    Returns:
        int: the tool's exit code.
    """
    command = COMMANDS[name]
    script = tools_dir() / command.script
    if not script.is_file():
        print(f"{PROG}: error: the tool of '{name}' is missing: {script}", file=sys.stderr)
        return 1
    argv = [f"{PROG} {name}"] + _with_config_resolved(args, command.config)
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = argv
    sys.path.insert(0, str(script.parent))  # as `python tools/x.py` would have it
    try:
        # as runpy.run_path(script, run_name="__main__"), but keeping sys.argv[0] (which
        # run_path sets to the script's path) so that the tool's usage names the command
        code = compile(script.read_text(encoding="utf-8"), str(script), "exec")
        exec(code, {"__name__": "__main__", "__file__": str(script), "__builtins__": builtins})
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code (2 for a usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    try:
        if name == "configs":
            if any(a in ("-h", "--help") for a in rest):
                print(f"usage: {PROG} configs [WORD ...]\n\n{usage().splitlines()[5]}")
                return 0
            names = list_configs(*rest)
            if not names:
                print(f"{PROG}: no shipped config contains {' and '.join(rest)}", file=sys.stderr)
                return 1
            print("\n".join(names))
            return 0
        if name == "path":
            print(resolve_config(rest[0]) if rest else shipped_root())
            return 0
        if name in COMMANDS:
            return run_tool(name, rest)
    except FileNotFoundError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    known = ", ".join(["configs", "path", *COMMANDS])
    print(f"{PROG}: error: unknown command {name!r} (commands: {known})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
