"""Witnessing after API writes: the new checkpoint goes to the configured witnesses in the
background, best effort, never delaying a response.

``poke()`` after a request appended; it returns at once. One background thread at most per
process sends the latest checkpoint (``witnessing.witness_latest``) over its own ledger
connection; pokes that arrive while it runs are coalesced into one more round after it. A
checkpoint every witness already cosigned is not sent again. A witness that is down or
refuses is logged (refusals are also stored as evidence by ``witness_latest``); the next
write, or ``radledger witness sync``, tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from radledger.ledger.proofs import sealed_size
from radledger.ledger.witnessing import TIMEOUT_S, WITNESSES_FILE, witness_latest
from radledger.storage.base import LedgerStore

log = logging.getLogger("radledger.api.witnessing")
CONFIG_RECHECK_S = 1.0  # how long "no witnesses.toml" is believed (a stat per write costs)


class WitnessSync:
    """Coalescing background sync of the latest checkpoint to the home's witnesses."""

    def __init__(self, home: Path, open_store: Callable[[], LedgerStore],
                 timeout: float = TIMEOUT_S) -> None:
        self._home = home
        self._open_store = open_store
        self._timeout = timeout
        self._lock = threading.Lock()
        self._wanted = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._store: LedgerStore | None = None
        self._done_size = -1  # the size every witness cosigned in the last round
        self._unconfigured_until = 0.0
        self.rounds = 0  # rounds run (for tests and monitoring)

    def poke(self) -> None:
        """Ask for the latest checkpoint to be sent (no-op when no witness is configured)."""
        now = time.monotonic()
        if now < self._unconfigured_until:
            return
        if not (self._home / WITNESSES_FILE).exists():
            self._unconfigured_until = now + CONFIG_RECHECK_S
            return
        with self._lock:
            if self._closed:
                return
            self._wanted = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="radledger-witness-sync")
                self._thread.start()

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the sync in flight, if any; True if idle."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def close(self) -> None:
        """Stop taking pokes, let a round in flight finish (bounded), close the connection."""
        with self._lock:
            self._closed = True
            self._wanted = False
        if self.idle(self._timeout * 2 + 1) and self._store is not None:
            self._store.close()
            self._store = None

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._wanted or self._closed:
                    self._thread = None
                    return
                self._wanted = False
            try:
                self._round()
            except Exception:  # best effort by contract: never kill the process over it
                log.exception("witness sync failed")

    def _round(self) -> None:
        if self._store is None:
            self._store = self._open_store()
        size = sealed_size(self._store)
        if size == self._done_size:
            return
        self.rounds += 1
        outcomes = witness_latest(self._store, self._home, timeout=self._timeout)
        for outcome in outcomes:
            if outcome.status != "cosigned":
                log.warning("witness %s: %s: %s", outcome.witness, outcome.status,
                            outcome.detail)
        if outcomes and all(o.status == "cosigned" for o in outcomes):
            self._done_size = size
