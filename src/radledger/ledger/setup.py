"""Creating and opening a ledger: home folder, database and the genesis block."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path

from radledger.errors import UnrecognisedDatabase
from radledger.ledger.home import LedgerHome, create_home, load_home, write_config
from radledger.ledger.service import Clock, Draft, Ledger
from radledger.storage.base import LedgerStore, SideStorage
from radledger.storage.side import SideStore
from radledger.storage.sqlite import SQLiteStore


def create_store(home: LedgerHome) -> LedgerStore:
    """Create the home's ledger database: SQLite in the home, or the PostgreSQL schema."""
    meta = {"origin": home.origin, "ledger_id": home.ledger_id}
    if home.database_url is not None:
        from radledger.storage.postgres import PostgresStore  # noqa: PLC0415 - psycopg lazily

        return PostgresStore.create(home.database_url, meta)
    return SQLiteStore.create(home.database, meta)


def open_store(home: LedgerHome) -> LedgerStore:
    """Open the home's ledger database (SQLite file or PostgreSQL), refusing anything else.
    Raises StorageError/UnrecognisedDatabase."""
    if home.database_url is not None:
        from radledger.storage.postgres import PostgresStore  # noqa: PLC0415

        store: LedgerStore = PostgresStore.open(home.database_url)
    else:
        store = SQLiteStore.open(home.database)
    meta = store.meta()
    if meta.get("ledger_id", home.ledger_id) != home.ledger_id:
        store.close()
        raise UnrecognisedDatabase(
            f"the database of {home.path} holds another ledger (ledger id "
            f"{meta.get('ledger_id')!r}, not {home.ledger_id!r})")
    return store


def open_side(home: LedgerHome, store: LedgerStore) -> SideStorage:
    """The home's side store: ``side.sqlite3`` beside an SQLite ledger, the ``side_*``
    tables of a PostgreSQL ledger (shared by every process, like the ledger)."""
    from radledger.storage.postgres import PostgresStore  # noqa: PLC0415

    if isinstance(store, PostgresStore):
        return store.side()
    return SideStore.open_or_create(home.side_database, home.ledger_id)


def init_ledger(path: Path, origin: str | None = None, actor_name: str | None = None,
                clock: Clock = time.time, database_url: str | None = None
                ) -> tuple[LedgerHome, Ledger]:
    """Create a ledger home with its keys, database and genesis block.

    Entry 0 registers the ledger key (self-signed), entry 1 the operator's actor key; both
    are sealed as block 0 with the first signed checkpoint. The config file is written last,
    so a crash leaves an incomplete home that `init` refuses rather than a broken ledger.
    """
    home = create_home(path, origin, actor_name, database_url)
    store = create_store(home)
    ledger = Ledger(store, home.origin, home.ledger_signer, clock)
    genesis = [
        _key_draft(home.origin, home.ledger_signer.signing_key.public_key, "ledger"),
        _key_draft(home.actor_signer.name, home.actor_signer.signing_key.public_key, "actor"),
    ]
    ledger.append_drafts(genesis, home.ledger_signer)
    write_config(home)
    return home, ledger


def open_ledger(path: Path, clock: Clock = time.time) -> tuple[LedgerHome, Ledger]:
    """Open the ledger in a home folder. Raises LedgerHomeError or a StorageError."""
    home = load_home(path)
    store = open_store(home)
    return home, Ledger(store, home.origin, home.ledger_signer, clock)


@dataclass(frozen=True)
class Workspace:
    """An open ledger with its side store and project key: what the DICOM services use."""

    ledger: Ledger
    side: SideStorage
    project_key: bytes


def open_workspace(home: LedgerHome, ledger: Ledger) -> Workspace:
    """The workspace of an opened ledger; its side store is created on first use."""
    return Workspace(ledger, open_side(home, ledger.store), home.project_key)


def _key_draft(name: str, public_key: bytes, role: str) -> Draft:
    return Draft("key.registered", {
        "name": name,
        "public_key": base64.b64encode(public_key).decode("ascii"),
        "role": role,
    })
