"""Run several scripts, each in a fresh process, for the start-up cost of one.

Tests of what happens when ``mmseg_marginal`` is imported (registration, the checkpoint set-up
that runs at import, ``custom_imports``) need a process that has not imported it yet. Starting
one interpreter per case costs the import of torch, mmcv, mmengine and mmseg each time (several
seconds of CPU). :func:`run_fresh` starts one interpreter, imports the third-party modules
named in ``preload`` there, and forks one child per script: every child starts from an
interpreter in which ``mmseg_marginal`` has never been imported, sets its own ``sys.argv`` and
environment, and runs its script as ``__main__``, with its own stdout, stderr and exit status.
The children run one after the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SERVER = r"""
import json, os, sys, traceback, types

spec = json.loads(open(sys.argv[1]).read())
for name in spec["preload"]:
    __import__(name)
assert not any(m == "mmseg_marginal" or m.startswith("mmseg_marginal.") for m in sys.modules)
results = {}
for case in spec["cases"]:
    out, err = case["out"] + ".stdout", case["out"] + ".stderr"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd_err = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            for key, value in case["env"].items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            sys.argv = ["-c"] + case["argv"]
            main = types.ModuleType("__main__")  # classes of the script pickle by reference
            sys.modules["__main__"] = main
            try:
                exec(compile(case["code"], "<" + case["name"] + ">", "exec"), main.__dict__)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int) and exc.code is not None:
                    print(exc.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    results[case["name"]] = os.waitstatus_to_exitcode(status)
print("RESULTS " + json.dumps(results))
"""


@dataclass(frozen=True)
class FreshResult:
    """What one script's process left: exit status and its whole stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Script:
    """``code`` run as ``__main__`` with ``sys.argv[1:] == argv``; ``env`` entries set in the
    process's environment before it runs (``None`` removes the variable)."""

    code: str
    argv: Sequence[str] = ()
    env: Mapping[str, str | None] | None = None


def run_fresh(
    scripts: Mapping[str, Script],
    workdir: Path,
    preload: Sequence[str] = ("torch", "mmengine", "mmseg"),
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> dict[str, FreshResult]:
    """Run every script of ``scripts`` (name -> :class:`Script`) in its own fresh process.

    Args:
        scripts: The scripts, by name (names are used in file names: letters, digits, ``_-.``).
        workdir: An existing folder for the specification and the captured output.
        preload: Third-party modules imported once before the forks (never this package: the
            parent checks that ``mmseg_marginal`` is not imported before it forks).
        env: The parent interpreter's environment (default: this process's, with the
            repository first on ``PYTHONPATH``).
        timeout: Seconds for the whole run.

    Returns:
        dict[str, FreshResult]: By script name.

    Raises:
        AssertionError: If the parent interpreter fails (a preload import, say), with its
            output.
    """
    cases = []
    for name, script in scripts.items():
        cases.append(
            dict(
                name=name,
                code=script.code,
                argv=[str(a) for a in script.argv],
                env=dict(script.env or {}),
                out=str(workdir / f"fresh_{name}"),
            )
        )
    spec = workdir / "fresh_spec.json"
    spec.write_text(json.dumps(dict(preload=list(preload), cases=cases)))
    if env is None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", _SERVER, str(spec)],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=workdir,
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    codes = json.loads(lines[-1][len("RESULTS ") :])
    return {
        case["name"]: FreshResult(
            returncode=codes[case["name"]],
            stdout=Path(case["out"] + ".stdout").read_text(),
            stderr=Path(case["out"] + ".stderr").read_text(),
        )
        for case in cases
    }
