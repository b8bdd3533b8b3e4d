"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl from Debian's postgresql
package (`make test` installs it), on a free loopback port, in a folder of its own.

initdb refuses to run as root, so as root the cluster is made and run by the ``postgres``
user (``runuser -u postgres``) in a folder under /tmp whose parents that user can read.
Nothing here depends on a server that happens to be running.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg


def pg_bin(tool: str) -> str:
    """The newest installed PostgreSQL's ``tool`` (initdb, pg_ctl, postgres)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return found[-1]
    which = shutil.which(tool)
    if which is None:
        raise RuntimeError(f"PostgreSQL's {tool} is not installed (make test installs the "
                           "Debian package postgresql)")
    return which


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc; no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster: ``start()``, ``url(db)``, ``create_database()``, ``stop()``,
    ``crash()`` (SIGKILL of the postmaster), and the data folder for tests that read it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="radledger-pg-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.log = self.root / "server.log"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run([*prefix, *argv], check=check, capture_output=True, text=True,
                              timeout=120)

    def init(self) -> None:
        """initdb with data checksums, trust auth on loopback only."""
        self.sockets.mkdir()
        self.log.touch()
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
            shutil.chown(self.log, "postgres")
        self._run(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--data-checksums", "--encoding=UTF8", "--locale=C.UTF-8")

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockets} "
                   "-c max_connections=200 -c fsync=on -c synchronous_commit=on")
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, database: str) -> str:
        """A libpq URL for ``database`` as the superuser postgres, over loopback TCP."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def postmaster_pid(self) -> int:
        """The running server's process id."""
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def crash(self) -> None:
        """SIGKILL the postmaster and its children: what a power cut looks like to the
        server. start() then runs crash recovery from the WAL."""
        pid = self.postmaster_pid()
        children = _children(pid)
        os.kill(pid, signal.SIGKILL)
        for child in children:
            try:
                os.kill(int(child), signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # let the children go too

    def stop_server(self) -> None:
        """Stop the server (fast shutdown), keeping its data."""
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop",
                  check=False)
        shutil.rmtree(self.root, ignore_errors=True)
