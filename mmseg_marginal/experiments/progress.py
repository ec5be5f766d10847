"""Progress of a run in a subprocess: a hook writes it to a file, the parent draws one bar.

:class:`ProgressFileHook` (in the run's process) writes ``{"phase", "done", "total"}`` to a
JSON file after training and test iterations; :class:`ProgressBar` (in the comparison's
process) draws it: on a terminal one line redrawn in place, elsewhere (a pipe, a log file)
one line per quarter of the training, so that captured output stays short.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Optional, TextIO

from mmengine.hooks import Hook


def write_progress(path: str, phase: str, done: int, total: int) -> None:
    """Write the progress JSON atomically (a reader never sees a partial file)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(dict(phase=phase, done=int(done), total=int(total)), f)
    os.replace(tmp, path)


def read_progress(path: str) -> Optional[dict]:
    """The last progress written to ``path``, or None (no file yet, or unreadable)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not {"phase", "done", "total"} <= data.keys():
        return None
    return data


class ProgressFileHook(Hook):
    """Writes the run's progress to ``path`` (see :func:`write_progress`).

    At most every ``interval`` seconds, and always after the last iteration of a phase; it
    reads the runner's counters only (no random numbers, no effect on the training).

    Args:
        path: the progress file.
        interval: minimum seconds between two writes.
    """

    priority = "VERY_LOW"

    def __init__(self, path: str, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._last = 0.0

    def _write(self, phase: str, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or done >= total or now - self._last >= self.interval:
            write_progress(self.path, phase, done, total)
            self._last = now

    def before_train(self, runner: Any) -> None:
        self._write("train", runner.iter, runner.max_iters, force=True)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self._write("train", runner.iter + 1, runner.max_iters)

    def before_test(self, runner: Any) -> None:
        self._write("test", 0, len(runner.test_dataloader), force=True)

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self._write("test", batch_idx + 1, len(runner.test_dataloader))


def _clock(seconds: float) -> str:
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """One progress bar for a run: training iterations with elapsed time and ETA, then testing.

    Args:
        label: printed before the bar (the run's name).
        stream: where to draw (default ``sys.stdout``).
        width: characters of the bar.
        tty: redraw one line in place (default: whether ``stream`` is a terminal); otherwise
            a line is printed at 25, 50, 75 and 100 % of the training and when testing ends.
    """

    def __init__(
        self,
        label: str,
        stream: Optional[TextIO] = None,
        width: int = 24,
        tty: Optional[bool] = None,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stdout
        self.width = width
        self.tty = self.stream.isatty() if tty is None else tty
        self.start = time.monotonic()
        self._first: Optional[tuple] = None  # (time, done) of the first training update
        self._quarter = 0
        self._test_done = False
        self._train_total: Optional[int] = None  # total of the last training update
        self._train_finished = False
        self._line = ""

    def eta(self, done: int, total: int, now: Optional[float] = None) -> Optional[float]:
        """Seconds left at the training's mean rate since the first update, or None."""
        now = time.monotonic() if now is None else now
        if self._first is None or done <= self._first[1]:
            return None
        rate = (now - self._first[0]) / (done - self._first[1])
        return rate * (total - done)

    def render(self, phase: str, done: int, total: int, now: Optional[float] = None) -> str:
        """The text of the bar for this progress."""
        now = time.monotonic() if now is None else now
        frac = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        text = f"  {self.label} {phase:5s} [{bar}] {done}/{total} {frac:4.0%}"
        text += f"  {_clock(now - self.start)} elapsed"
        if phase == "train":
            left = self.eta(done, total, now)
            text += f", ETA {_clock(left)}" if left is not None and done < total else ""
        return text

    def update(self, phase: str, done: int, total: int) -> None:
        """Show this progress (see the class docstring for when a line is printed)."""
        now = time.monotonic()
        if phase == "train":
            self._train_total = total
            self._train_finished = done >= total
            if self._first is None or done < self._first[1]:
                self._first = (now, done)
        elif self._train_total is not None and not self._train_finished:
            # testing starts after the last iteration, which the reader of a progress file can
            # miss between two polls: the training line is completed first
            self.update("train", self._train_total, self._train_total)
        text = self.render(phase, done, total, now)
        if self.tty:
            pad = max(len(self._line) - len(text), 0)
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._line = text
            return
        if phase == "train" and total > 0:
            quarter = min(4, (4 * done) // total)
            if quarter > self._quarter:
                self._quarter = quarter
                print(text, file=self.stream, flush=True)
        elif phase == "test" and total > 0 and done >= total and not self._test_done:
            self._test_done = True
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar's line (terminal)."""
        if self.tty and self._line:
            self.stream.write("\n")
            self.stream.flush()
            self._line = ""
