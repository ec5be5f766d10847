"""Fresh Python processes for the tests, without paying the interpreter start-up each time.

A tool (``python tools/test.py ...``) or a ``python -c`` script started by a test spends most
of its CPU time importing torch, mmcv, mmengine and mmseg before it does anything. A
:class:`FreshProcesses` server is one interpreter that has imported those third-party modules
(``PRELOAD``) and never ``mmseg_marginal``; for every run it forks a child process, which

- sets its environment (the whole of ``env``), working directory, ``sys.argv`` and, as
  ``python script`` and ``PYTHONPATH`` would, ``sys.path``;
- reads nothing (stdin is ``/dev/null``) and writes its stdout and stderr to files of its own;
- runs the script as ``__main__`` (``runpy.run_path``) or the code in a new ``__main__``
  module, imports ``mmseg_marginal`` itself if the script does, and exits as the interpreter
  would: status 0, the ``SystemExit`` code, or 1 with the traceback on stderr, after the
  ``atexit`` functions.

So each run starts from the state of a new interpreter that has imported only third-party
libraries: what the package does at import (registration, the checkpoint set-up) runs in the
child. Runs are sequential. Variables read when torch is imported (``OMP_NUM_THREADS``) take the
server's values, which are the test session's. As in the test session
(``config_loading.memoized_metafiles``), mmengine's lookup of ``mmseg::`` config bases reads
mmseg's metafiles (read-only package data) from a cache that the server fills once, and a
config text is formatted by yapf once per text in each process (``config_loading``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Third-party modules the server imports before any fork: the tools' and the package's
# import-time dependencies. Never matplotlib or mmpretrain (tests block them in the child).
PRELOAD = (
    "numpy",
    "cv2",
    "PIL.Image",
    "torch",
    "torch.distributed.tensor",
    "mmengine.config",
    "mmengine.runner",
    "mmseg.apis",
    "mmseg.datasets",
    "mmseg.engine",
    "mmseg.evaluation",
    "mmseg.models",
    "mmseg.structures",
    "mmseg.utils",
    "mmseg.visualization",
)

_SERVER = r"""
import atexit, json, os, runpy, sys, traceback, types

for name in json.loads(sys.argv[1]):
    __import__(name)

# mmseg's metafiles read once, here, for every child (see config_loading.memoized_metafiles)
import functools
import mmengine.config.utils as cfg_utils
import mmseg

_read = cfg_utils.load
_cached = functools.cache(_read)


def _load(file, *args, **kwargs):
    if isinstance(file, str) and file.endswith((".yml", ".yaml")) and not args and not kwargs:
        return _cached(file)
    return _read(file, *args, **kwargs)


cfg_utils.load = _load

# a config text formatted by yapf once per text (see config_loading.memoized_formatting)
import mmengine.config.config as cfg_config

_format = cfg_config.FormatCode
_formatted = {}


def _format_code(text, **kwargs):
    key = (text, repr(sorted(kwargs.items())))
    if key not in _formatted:
        _formatted[key] = _format(text, **kwargs)
    return _formatted[key]


cfg_config.FormatCode = _format_code
try:
    cfg_utils._get_cfg_metainfo(os.path.dirname(mmseg.__file__), "")
except ValueError:  # no config named "": every metafile has been read
    pass
loaded = [m for m in sys.modules if m == "mmseg_marginal" or m.startswith("mmseg_marginal.")]
assert not loaded, loaded
base_path = [p for p in sys.path if p]  # without the server's working directory
channel = sys.stdout
print("READY", file=channel, flush=True)


def child(req):
    os.setpgid(0, 0)  # its own process group: a timeout kills what it started too
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    extra = [p for p in req["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    first = [os.path.dirname(os.path.abspath(req["script"]))] if req["script"] else [""]
    sys.path[:] = first + [p for p in extra if p not in base_path] + base_path
    code = 0
    try:
        if req["script"]:
            sys.argv = [req["script"]] + req["args"]
            runpy.run_path(req["script"], run_name="__main__")
        else:
            sys.argv = ["-c"] + req["args"]
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(req["code"], "<string>", "exec"), main.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


for line in sys.stdin:
    req = json.loads(line)
    channel.flush()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = child(req)
        finally:
            os._exit(status)
    try:
        os.setpgid(pid, pid)
    except OSError:  # the child has done it already
        pass
    print("PID", pid, file=channel, flush=True)
    _, status = os.waitpid(pid, 0)
    print("DONE", os.waitstatus_to_exitcode(status), file=channel, flush=True)
"""


@dataclass(frozen=True)
class FreshResult:
    """What one run left, as ``subprocess.run(..., capture_output=True, text=True)`` does."""

    args: list
    returncode: int
    stdout: str
    stderr: str


class FreshProcesses:
    """A server of fresh processes (see the module docstring).

    Args:
        workdir (Path): An existing folder for the captured output of the runs.
        preload (Sequence[str]): Third-party modules imported before the forks; the server
            refuses to start if they import ``mmseg_marginal``.
        env (Mapping[str, str] | None): The server's environment (default: this process's
            with the repository first on ``PYTHONPATH``).

    Raises:
        RuntimeError: If the server does not start, with its stderr.
    """

    def __init__(
        self,
        workdir: Path,
        preload: Sequence[str] = PRELOAD,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.count = 0
        self._buffer = b""
        if env is None:
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        self.env = dict(env)
        self._errors = self.workdir / "server.stderr"
        with open(self._errors, "w") as errors:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _SERVER, json.dumps(list(preload))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=self.env,
                cwd=REPO,
            )
        if self._read_line(600) != "READY":
            self.close()
            raise RuntimeError(f"fresh-process server did not start:\n{self._server_errors()}")

    def _server_errors(self) -> str:
        return self._errors.read_text()[-3000:]

    def _read_line(self, timeout: float) -> str | None:
        """The server's next line, or None after ``timeout`` seconds (or at its exit)."""
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().strip()

    def run(
        self,
        script: str | Path | None = None,
        *args: object,
        code: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 600,
    ) -> FreshResult:
        """``python script *args`` (or ``python -c code *args``) in a fresh process.

        Args:
            script: A Python file, run as ``__main__``; or None with ``code``.
            *args: Its command-line arguments (converted with ``str``).
            code: Source run as ``python -c`` runs it, when ``script`` is None.
            env: The process's whole environment (default: the server's).
            cwd: Its working directory (default: the repository).
            timeout: Seconds before the process is killed.

        Returns:
            FreshResult: Exit status, stdout and stderr.

        Raises:
            subprocess.TimeoutExpired: If it ran longer than ``timeout`` (it is killed).
            RuntimeError: If the server has stopped.
        """
        if (script is None) == (code is None):
            raise ValueError("give either a script or code")
        self.count += 1
        out = self.workdir / f"run{self.count}"
        req = dict(
            script=str(script) if script is not None else None,
            code=code,
            args=[str(a) for a in args],
            env=dict(self.env if env is None else env),
            cwd=str(cwd if cwd is not None else REPO),
            stdout=f"{out}.stdout",
            stderr=f"{out}.stderr",
        )
        cmd = [sys.executable, req["script"] or "-c"] + req["args"]
        self._proc.stdin.write((json.dumps(req) + "\n").encode())
        self._proc.stdin.flush()
        started = self._read_line(60)
        if not started or not started.startswith("PID "):
            raise RuntimeError(f"fresh-process server stopped:\n{self._server_errors()}")
        pid = int(started.split()[1])
        done = self._read_line(timeout)
        if done is None:
            os.killpg(pid, signal.SIGKILL)
            self._read_line(60)
            raise subprocess.TimeoutExpired(cmd, timeout)
        returncode = int(done.split()[1])
        return FreshResult(
            args=cmd,
            returncode=returncode,
            stdout=Path(req["stdout"]).read_text(),
            stderr=Path(req["stderr"]).read_text(),
        )

    def close(self) -> None:
        """Stop the server."""
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
