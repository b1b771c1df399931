"""The servers under load: uvicorn processes (Pagely and the references) on free ports, their
start-up and shutdown, and the peak memory of their process trees."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
import psutil

from bench import REPOSITORY
from pagely.devtools.processes import free_port

# Every server is started with these, so R0, R1 and Pagely differ only in the app.
_UVICORN_SETTINGS = (
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--timeout-keep-alive",
    "30",  # as `pagely serve` (KEEP_ALIVE_SECONDS)
    "--log-level",
    "warning",
)


def reference_command(target: str, port: int, workers: int) -> list[str]:
    """uvicorn serving the ASGI app `target` ("module:attribute")."""
    listen = ["--port", str(port), "--workers", str(workers)]
    return [sys.executable, "-m", "uvicorn", target, *_UVICORN_SETTINGS, *listen]


def pagely_command(port: int, workers: int = 1) -> list[str]:
    """`pagely serve`, which runs uvicorn with the same settings as the references."""
    listen = ["--port", str(port), "--workers", str(workers)]
    return [sys.executable, "-m", "pagely.cli", "serve", *listen]


class Server:
    """A server process in its own session (so stopping it stops its workers too), on a free
    port, logging to a file. Use it as a context manager: leaving the block stops it."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        # A file as in production, never a pipe: nobody reads it, and a full pipe blocks.
        self.log_path = Path(tempfile.gettempdir()) / f"pagely-bench-{name}-{port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPOSITORY,
            start_new_session=True,
        )
        self.peak_rss = 0

    @classmethod
    def reference(cls, name: str, target: str, workers: int, env: dict[str, str]) -> Server:
        port = free_port()
        return cls(name, reference_command(target, port, workers), env, port)

    @classmethod
    def pagely(cls, workers: int, env: dict[str, str]) -> Server:
        port = free_port()
        return cls("pagely", pagely_command(port, workers), env, port)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_until_up(self, probe: str, timeout: float = 60) -> None:
        """Until GET `probe` answers anything but a server error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited: {tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + probe, timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start within {timeout:g} s")

    def rss(self) -> int:
        """The resident memory of the process and its workers, in bytes."""
        try:
            root = psutil.Process(self.process.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    @contextlib.contextmanager
    def sampling_rss(self) -> Iterator[None]:
        """Track `peak_rss` while the block runs (blocks may overlap: each has its sampler)."""
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                self.peak_rss = max(self.peak_rss, self.rss())
                done.wait(0.2)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()
