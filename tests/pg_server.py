"""A throwaway PostgreSQL cluster on a loopback port, for the catalogue contract and the
many-searchers tests.

initdb into a fresh temporary folder, `pg_ctl start` listening on 127.0.0.1 only (and a socket
in that folder), torn down after. PostgreSQL refuses to run as root, so when the tests run as
root the cluster runs as the `postgres` user if there is one, else `nobody`; the folder is
made theirs. The superuser `magpie_admin` (trust auth on loopback: the cluster is private to
this test run) owns the database `magpie`; tests make least-privilege roles themselves.

Import the fixture into a test module: ``from pg_server import pg_server``. Tests skip (with the
reason) only when psycopg or the PostgreSQL server binaries are missing here;
`MAGPIE_REQUIRE_POSTGRES=1` (set in CI) turns that skip into a failure.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ADMIN = "magpie_admin"
DATABASE = "magpie"


def _binary(name: str) -> str | None:
    """The newest server's tool: Debian keeps them in /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


def pg_missing() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None if they can."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        return f"PostgreSQL support not installed ({exc}); pip install -e '.[postgres]'"
    for tool in ("initdb", "pg_ctl", "postgres"):
        if _binary(tool) is None:
            return f"the PostgreSQL server ({tool}) is not installed; apt-get install postgresql"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return pw.pw_uid, pw.pw_gid
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


class PgServer:
    """One cluster: init, start, stop (gently or as a crash), restart on the same data."""

    def __init__(self, port: int | None = None) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="magpie-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log_path = self.base / "server.log"
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.owner = _run_as()
        self.sock.mkdir()
        os.chmod(self.base, 0o755)
        if self.owner:
            for p in (self.base, self.sock):
                os.chown(p, *self.owner)
        self._tool("initdb", "-D", str(self.data), "-U", ADMIN, "-A", "trust", "-E", "UTF8",
                   "--no-sync", "--no-instructions")

    def _tool(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.owner:
            kwargs = {"user": self.owner[0], "group": self.owner[1], "extra_groups": []}
        return subprocess.run([_binary(name), *args], capture_output=True, text=True,
                              check=check, cwd=self.base, stdin=subprocess.DEVNULL,
                              timeout=120, **kwargs)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def dsn(self, user: str = ADMIN, database: str = DATABASE) -> str:
        return f"postgresql://{user}@{self.address}/{database}"

    def url(self, name: str = "magpie", user: str = ADMIN) -> str:
        """A catalogue URL: the catalogue lives in schema NAME_<fingerprint> of the database."""
        return f"{self.dsn(user)}?schema={name}"

    def start(self) -> PgServer:
        opts = (f"-k {self.sock} -c listen_addresses={self.host} -p {self.port} "
                "-c fsync=off -c full_page_writes=off "
                "-c max_connections=300 -c shared_buffers=32MB")
        try:
            self._tool("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w",
                       "-t", "60", "-o", opts, "start")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"PostgreSQL did not start: {exc.stdout}{exc.stderr}\n"
                               f"{self.log_tail()}") from None
        if not getattr(self, "_made", False):
            self.admin_sql(f"CREATE DATABASE {DATABASE}", database="postgres")
            self._made = True
        return self

    def admin_sql(self, sql: str, database: str = DATABASE) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.dsn(database=database), autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def stop(self, *, kill: bool = False) -> None:
        """kill: immediate shutdown (no checkpoint; crash recovery at the next start)."""
        if not self.data.exists():
            return
        self._tool("pg_ctl", "-D", str(self.data), "-m", "immediate" if kill else "fast",
                   "-w", "stop", check=False)

    def restart(self) -> PgServer:
        self.stop()
        return self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def _require() -> None:
    reason = pg_missing()
    if reason:
        if os.environ.get("MAGPIE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server():
    """A cluster shared by the session (tests use distinct schema names)."""
    _require()
    server = PgServer().start()
    yield server
    server.destroy()


@pytest.fixture
def own_pg_server():
    """A private cluster for tests that kill and restart it."""
    _require()
    server = PgServer().start()
    yield server
    server.destroy()


def wait_until(check, timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False
