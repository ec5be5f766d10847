"""A local HTTP server on 127.0.0.1 for the tests of remote checkpoints, a URL nobody answers,
and a free port for the rendezvous of the launchers (``torchrun``, ``tools/dist_*.sh``).

The server is a thread of the test process that serves one folder and stops when the ``with``
block ends; nothing outside the loopback interface is contacted. Ports are the kernel's choice,
never fixed numbers, so that test processes running side by side do not collide.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import threading
from pathlib import Path
from typing import Iterator


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def free_port() -> int:
    """A 127.0.0.1 port the kernel just handed out and that was closed again."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url(name: str) -> str:
    """A URL on a 127.0.0.1 port that was just closed: nothing listens there."""
    return f"http://127.0.0.1:{free_port()}/{name}"
