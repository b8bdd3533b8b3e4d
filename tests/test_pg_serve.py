"""Issue 7: several `radledger serve` processes appending concurrently to one PostgreSQL
ledger. No gaps, no duplicate indices, no forked blocks, every acknowledged entry present,
`verify` passes; kill -9 of one server mid-append leaves the others working and loses
nothing acknowledged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from radledger.core import merkle
from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import verify_ledger

EXE = Path(sys.executable).parent / "radledger"
SERVERS = 4
PER_CLIENT = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(EXE), "serve", "--home", str(home), "--port", str(port), "--rate-limit", "0",
             "--no-access-log"], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_up(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/checkpoint", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on {port} did not come up: {log.read_text()[-2000:]}")


class Client(threading.Thread):
    """Appends PER_CLIENT entries through one server; keeps every acknowledgement."""

    def __init__(self, port: int, token: str, number: int) -> None:
        super().__init__()
        self.port, self.token, self.number = port, token, number
        self.acks: list[tuple[int, str, int]] = []  # index, leaf hash, n
        self.failures = 0

    def run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30,
                          headers={"Authorization": f"Bearer {self.token}"}) as http:
            for n in range(PER_CLIENT):
                try:
                    r = http.post("/entries", content=json.dumps(
                        {"kind": "x-lab.served", "body": {"client": self.number, "n": n}}))
                except httpx.HTTPError:
                    self.failures += 1  # the server was killed: not acknowledged
                    continue
                assert r.status_code == 201, r.text
                body: dict[str, Any] = r.json()
                self.acks.append((body["index"], body["leaf_hash"], n))


def test_four_servers_share_one_postgresql_ledger_and_survive_a_kill_9(
        tmp_path: Path, pg_url: str) -> None:
    home = tmp_path / "home"
    _, ledger = init_ledger(home, "example.org/served", "alice", database_url=pg_url)
    ledger.store.close()
    token = subprocess.run([str(EXE), "token", "create", "--role", "writer", "--name",
                            "load", "--home", str(home)], check=True, capture_output=True,
                           text=True).stdout.strip()
    ports = [_free_port() for _ in range(SERVERS)]
    logs = [tmp_path / f"serve-{i}.log" for i in range(SERVERS)]
    servers = [_serve(home, port, log) for port, log in zip(ports, logs, strict=True)]
    try:
        for port, proc, log in zip(ports, servers, logs, strict=True):
            _wait_up(port, proc, log)
        # two clients per server, all at once
        clients = [Client(ports[i % SERVERS], token, i) for i in range(2 * SERVERS)]
        for client in clients:
            client.start()
        # kill -9 server 0 once some of its entries are acknowledged
        victims = [c for c in clients if c.port == ports[0]]
        deadline = time.monotonic() + 120
        while sum(len(c.acks) for c in victims) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        servers[0].send_signal(signal.SIGKILL)
        servers[0].wait(timeout=30)
        for client in clients:
            client.join(timeout=300)
        survivors = [c for c in clients if c.port != ports[0]]
        assert all(len(c.acks) == PER_CLIENT and c.failures == 0 for c in survivors), \
            [(c.number, len(c.acks), c.failures) for c in survivors]
        assert sum(c.failures for c in victims) > 0  # the kill did land mid-run
        for proc in servers[1:]:
            assert proc.poll() is None
    finally:
        for proc in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

    acks = [a for c in clients for a in c.acks]
    indices = [index for index, _, _ in acks]
    assert len(indices) == len(set(indices))  # no duplicate acknowledgement
    loaded, ledger = open_ledger(home)
    store = ledger.store
    size = store.entry_count()
    rows = store.entries(0, size)
    assert [r[0] for r in rows] == list(range(size))  # dense: no gaps
    by_index = {r[0]: r for r in rows}
    for index, leaf_hex, _ in acks:  # every acknowledged entry present, as acknowledged
        assert by_index[index][2].hex() == leaf_hex
        assert merkle.leaf_hash(by_index[index][3]).hex() == leaf_hex
    blocks = store.blocks(0, 100_000)
    assert [h.height for h, _ in blocks] == list(range(len(blocks)))  # no fork: one chain
    for (previous, stored), (header, _) in zip(blocks, blocks[1:], strict=False):
        assert header.previous_hash == stored
        assert header.first_index == previous.tree_size
    assert blocks[-1][0].tree_size == size
    assert verify_ledger(store, loaded.ledger_verifier, workers=1).ok
    store.close()
