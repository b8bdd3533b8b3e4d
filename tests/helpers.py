"""Small helpers shared by the ledger tests."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from radledger.core.ed25519 import SigningKey
from radledger.core.note import Signer
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Draft, Ledger, Receipt


def qc(n: int) -> Draft:
    """A lab's own entry kind with a small body."""
    return Draft("x-lab.qc-check", {"n": n, "passed": n % 3 != 0}, {"study": f"{n:064x}"})


def register_key(ledger: Ledger, home: LedgerHome, name: str, role: str = "actor"
                 ) -> tuple[Signer, Receipt]:
    """Create a key and register it, signed by the ledger key."""
    signer = Signer(name, SigningKey.generate())
    public = base64.b64encode(signer.signing_key.public_key).decode()
    (receipt,) = ledger.append_drafts(
        [Draft("key.registered", {"name": name, "public_key": public, "role": role})],
        home.ledger_signer,
    )
    return signer, receipt


def raw_db(path: Path) -> sqlite3.Connection:
    """A connection that bypasses radledger: append-only triggers dropped, as an attacker
    with write access to the file would."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        conn.execute(f"DROP TRIGGER {name}")
    return conn
