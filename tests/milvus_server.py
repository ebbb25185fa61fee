"""A milvus-lite gRPC server on a loopback TCP port, for the store contract and end-to-end tests.

milvus-lite (3.x) serves the Milvus gRPC protocol; pymilvus talks to it exactly as it talks to a
cluster (``http://127.0.0.1:PORT``). The fixture runs it as a separate process, the way a real
server runs, so a test can kill it mid-index and start it again on the same data and port:

    python -m milvus_lite server --data-dir DIR --host 127.0.0.1 --port PORT

Import the fixtures into a test module: ``from milvus_server import milvus_server``.
Tests skip (with the reason) only when pymilvus or milvus-lite cannot be imported here, e.g.
on a platform without wheels for them; `MAGPIE_REQUIRE_MILVUS=1` (set it in CI) turns that
skip into a failure so a missing install cannot pass silently.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

START_TIMEOUT_S = 60.0


def milvus_missing() -> str | None:
    """Why the Milvus tests cannot run here, or None if they can."""
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"Milvus support not installed ({exc}); pip install -e '.[milvus]'"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MilvusServer:
    """One milvus-lite server process: start, wait until it answers, stop (gently or not)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        return f"http://{self.address}"

    def url(self, collection: str) -> str:
        return f"milvus://{self.address}/{collection}"

    def start(self) -> MilvusServer:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
                 "--host", self.host, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"milvus-lite server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
                client = self.client(timeout=5)
                client.list_collections()
                client.close()
                return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"milvus-lite not ready on {self.address} after {timeout}s: {last}\n"
                           f"{self.log_tail()}")

    def client(self, timeout: float = 30.0):
        """A client made the way the store makes its own (its own connection, keepalive the
        server accepts): a pymilvus default client would open a shared connection that pings
        every 10 s and that later clients to this address would inherit."""
        from indexer.milvus_store import connect

        return connect(self.uri, "", timeout)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGINT lets it close its data cleanly, kill simulates a crash."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def restart(self) -> MilvusServer:
        self.stop()
        return self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):
    """A milvus-lite server shared by the session (tests use distinct collection names)."""
    reason = milvus_missing()
    if reason:
        if os.environ.get("MAGPIE_REQUIRE_MILVUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = MilvusServer(tmp_path_factory.mktemp("milvus") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def own_milvus_server(tmp_path: Path):
    """A private server for tests that stop and restart it."""
    reason = milvus_missing()
    if reason:
        if os.environ.get("MAGPIE_REQUIRE_MILVUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = MilvusServer(tmp_path / "milvus-data").start()
    yield server
    server.stop()
