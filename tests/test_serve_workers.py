"""`radledger serve --workers N`: several server processes on one port over one ledger.

Appends through all of them stay dense and verified, and a web form served by one worker is
accepted by another (they share the CSRF key the parent made)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from radledger.ledger.setup import init_ledger, open_ledger
from radledger.ledger.verify import verify_ledger

EXE = Path(sys.executable).parent / "radledger"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _append_through(base: str, writer: str) -> tuple[list[int], list[str]]:
    """100 POST /entries from 4 threads, each on a fresh connection (so the kernel spreads
    them over both workers): the acknowledged indices and anything that went wrong."""
    acks: list[int] = []
    errors: list[str] = []

    def append(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for i in range(25):
                try:
                    r = http.post("/entries", headers={
                        "Authorization": f"Bearer {writer}", "Connection": "close"},
                        content=json.dumps({"kind": "x-lab.w", "body": {"t": n, "i": i}}))
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:300]}")
                    continue
                acks.append(r.json()["index"])

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acks, errors


def test_two_workers_share_the_ledger_and_the_csrf_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_ledger(home, "example.org/workers", "alice")[1].store.close()

    def token(role: str, name: str) -> str:
        return subprocess.run([str(EXE), "token", "create", "--role", role, "--name", name,
                               "--home", str(home)], check=True, capture_output=True,
                              text=True).stdout.strip()

    writer, reader = token("writer", "w"), token("reader", "r")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([str(EXE), "serve", "--home", str(home), "--port", str(port),
                               "--workers", "2", "--rate-limit", "0", "--no-access-log"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:  # both workers up: each logs its own startup
            booted = (tmp_path / "serve.log").read_text()
            if booted.count("Application startup complete") >= 2:
                break
            assert server.poll() is None and time.monotonic() < deadline, booted[-2000:]
            time.sleep(0.1)
        assert len(set(re.findall(r"Started server process \[(\d+)\]", booted))) == 2, booted
        assert httpx.get(f"{base}/checkpoint", timeout=10).status_code == 200

        acks, errors = _append_through(base, writer)
        assert not errors, (errors[:5], (tmp_path / "serve.log").read_text()[-3000:])
        assert len(acks) == len(set(acks)) == 100

        # one browser session; each request on a new connection, to either worker
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Connection": "close"}) as browser:
            login = browser.post("/ui/login", data={"token": reader},
                                 headers={"Origin": base})
            assert login.status_code == 303, login.text
            refused = 0
            for _ in range(20):
                page = browser.get("/ui/reviewer").text
                found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
                assert found, page[:500]
                search = browser.post("/ui/studies", data={"q": "1.2.3", "csrf": found[1]},
                                      headers={"Origin": base})
                refused += search.status_code == 403
            assert refused == 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    loaded, ledger = open_ledger(home)
    size = ledger.store.entry_count()
    assert [r[0] for r in ledger.store.entries(0, size)] == list(range(size))
    assert verify_ledger(ledger.store, loaded.ledger_verifier, workers=1).ok
    ledger.store.close()
