"""Getting the ledger's checkpoints cosigned by witnesses (C2SP tlog-witness, client side).

Witnesses are configured in the ledger home's ``witnesses.toml`` (name, URL = the witness's
submission prefix, verifier key of type 0x04, and an optional ``quorum``). For each witness,
``sync_witnesses`` sends the latest checkpoint with a consistency proof from the size that
witness last cosigned (from the ``cosignatures`` table; 0 at first), retries once from the
size a 409 names, verifies the cosignature with the pinned key and stores it. A refusal is
stored in ``witness_refusals`` with the request (old size, proof, signed checkpoint), the answer
and the checkpoint held as cosigned at the old size: a rewritten or forked ledger leaves both
signed checkpoints and the failed proof. An unreachable witness is reported, never raised:
witnessing lags, appending goes on.
"""

from __future__ import annotations

import base64
import os
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from radledger.core.checkpoint import Checkpoint, parse_checkpoint
from radledger.core.cosignature import CosignatureVerifier, open_cosignatures, parse_witness_vkey
from radledger.core.note import MAX_SIGNATURES, check_key_name, parse_note
from radledger.errors import InputError, KeyFormatError, RadledgerError, VerificationError
from radledger.ledger import proofs
from radledger.ledger.home import LedgerHome
from radledger.ledger.service import Ledger
from radledger.ledger.setup import Workspace
from radledger.storage.base import LedgerStore
from radledger.storage.cosignatures import (
    Refusal,
    StoredCosignature,
    cosignatures,
    insert_cosignature,
    insert_refusal,
    last_cosigned,
)

WITNESSES_FILE = "witnesses.toml"
TIMEOUT_S = 5.0
MAX_RESPONSE = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_CONFLICT = 409

Clock = Callable[[], float]


@dataclass(frozen=True)
class WitnessConfig:
    """A configured witness: local name, submission prefix URL, pinned key."""

    name: str
    url: str
    verifier: CosignatureVerifier

    @property
    def vkey(self) -> str:
        """The pinned verifier key string; cosignatures are stored under it."""
        return self.verifier.vkey


@dataclass(frozen=True)
class WitnessSet:
    """The witnesses of a ledger home and the quorum policy (None: a majority)."""

    witnesses: tuple[WitnessConfig, ...]
    quorum: int | None = None

    @property
    def required(self) -> int:
        """Cosignatures needed: the configured quorum, else a majority of the witnesses."""
        return self.quorum if self.quorum is not None else len(self.witnesses) // 2 + 1


# -- configuration --------------------------------------------------------------------------
def load_witnesses(home: Path) -> WitnessSet:
    """Read ``witnesses.toml`` (an empty set if absent). Raises InputError if malformed."""
    path = home / WITNESSES_FILE
    if not path.exists():
        return WitnessSet(())
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None
    quorum = data.get("quorum")
    if quorum is not None and (not isinstance(quorum, int) or quorum < 0):
        raise InputError(f"{path}: quorum must be a non-negative integer")
    found = []
    for item in data.get("witness", []):
        if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("name", "url", "vkey")):
            raise InputError(f"{path}: each [[witness]] needs string name, url and vkey")
        found.append(_witness(item["name"], item["url"], item["vkey"]))
    return WitnessSet(tuple(found), quorum)


def _witness(name: str, url: str, vkey: str) -> WitnessConfig:
    try:
        check_key_name(name)
    except KeyFormatError:
        raise InputError(f"witness name {name!r:.80} must be non-empty without spaces or '+'"
                         ) from None
    if not url.startswith(("http://", "https://")):
        raise InputError(f"witness URL {url!r:.200} must start with http:// or https://")
    return WitnessConfig(name, url.rstrip("/"), parse_witness_vkey(vkey))


def add_witness(home: Path, name: str, url: str, vkey: str, quorum: int | None = None
                ) -> WitnessSet:
    """Add a witness (and set the quorum if given) to ``witnesses.toml``, atomically.

    Raises InputError for a duplicate name or key, a bad URL, KeyFormatError for a bad vkey.
    """
    current = load_witnesses(home)
    new = _witness(name, url, vkey)
    for have in current.witnesses:
        if have.name == new.name or have.vkey == new.vkey:
            raise InputError(f"witness {have.name} ({have.vkey}) is already configured")
    updated = WitnessSet((*current.witnesses, new),
                         quorum if quorum is not None else current.quorum)
    lines = ["# radledger witnesses: `radledger witness add/list/sync`. Cosignatures are",
             "# evidence in the ledger database (tables cosignatures, witness_refusals).", ""]
    if updated.quorum is not None:
        lines += [f"quorum = {updated.quorum}", ""]
    for w in updated.witnesses:
        lines += ["[[witness]]", f"name = {_toml(w.name)}", f"url = {_toml(w.url)}",
                  f"vkey = {_toml(w.vkey)}", ""]
    tmp = home / (WITNESSES_FILE + ".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, home / WITNESSES_FILE)
    return updated


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- syncing ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncOutcome:
    """What one witness did with the latest checkpoint.

    ``status``: ``cosigned``, ``refused`` (evidence stored), ``unreachable`` or ``error``.
    """

    witness: str
    tree_size: int
    status: str
    detail: str
    http_status: int | None = None


@dataclass
class _Attempt:
    witness: WitnessConfig
    old_size: int
    body: str = ""
    status: int | None = None
    content_type: str = ""
    answer: str = ""
    error: str = ""


def _post(url: str, body: str, timeout: float) -> tuple[int, str, str]:
    """POST to ``url``: (status, content type, body text). Raises OSError if unreachable."""
    request = urllib.request.Request(url, data=body.encode("utf-8"), method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            return (response.status, response.headers.get("Content-Type", ""),
                    response.read(MAX_RESPONSE).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        with exc:
            return (exc.code, exc.headers.get("Content-Type", ""),
                    exc.read(MAX_RESPONSE).decode("utf-8", "replace"))


def _send_all(attempts: list[_Attempt], timeout: float) -> None:
    def send(attempt: _Attempt) -> None:
        try:
            attempt.status, attempt.content_type, attempt.answer = _post(
                attempt.witness.url + "/add-checkpoint", attempt.body, timeout)
        except (OSError, ValueError) as exc:  # refused, timed out, bad URL, TLS
            attempt.error = str(exc) or type(exc).__name__
    if attempts:
        with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
            list(pool.map(send, attempts))


def _request_body(store: LedgerStore, note: str, size: int, old: int) -> str:
    proof = proofs.consistency(store, old, size).proof if 0 < old < size else []
    lines = "".join(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}"


def sync_witnesses(store: LedgerStore, witnesses: Sequence[WitnessConfig], *,
                   timeout: float = TIMEOUT_S, clock: Clock = time.time) -> list[SyncOutcome]:
    """Send the latest checkpoint to every witness (in parallel) and store what comes back.

    Raises InputError if the ledger has no checkpoint, StorageError on storage failure;
    witness failures are outcomes, never raised.
    """
    note = store.checkpoint()
    if note is None:
        raise InputError("the ledger has no checkpoint yet")
    checkpoint = parse_checkpoint(parse_note(note).text)
    size = checkpoint.tree_size
    attempts = []
    for witness in witnesses:
        # always asked, even if it cosigned this very checkpoint: only the witness knows
        # whether it has since seen a larger tree (a restored backup, a fork)
        last = last_cosigned(store, witness.vkey)
        attempts.append(_Attempt(witness, last.tree_size if last else 0))
    outcomes: dict[str, SyncOutcome] = {}
    for round_ in (1, 2):
        todo = []
        for attempt in attempts:
            if attempt.old_size > size:
                outcomes[attempt.witness.vkey] = _behind(store, attempt, note, size, clock)
            else:
                attempt.body = _request_body(store, note, size, attempt.old_size)
                todo.append(attempt)
        _send_all(todo, timeout)
        attempts = []
        for attempt in todo:
            retry = _retry_size(attempt) if round_ == 1 else None
            if retry is not None:
                attempts.append(_Attempt(attempt.witness, retry))
            else:
                outcomes[attempt.witness.vkey] = _settle(store, attempt, note, checkpoint,
                                                         clock)
    return [outcomes[w.vkey] for w in witnesses]


def _retry_size(attempt: _Attempt) -> int | None:
    """The witness's latest size from a 409 size answer, if it differs from what was sent."""
    if attempt.status != _CONFLICT or not attempt.content_type.startswith(SIZE_CONTENT_TYPE):
        return None
    text = attempt.answer.removesuffix("\n")
    if not text.isascii() or not text.isdigit() or int(text) == attempt.old_size:
        return None
    return int(text)


def _held(store: LedgerStore, witness: WitnessConfig, old_size: int) -> str | None:
    rows = cosignatures(store, tree_size=old_size, witness=witness.vkey) if old_size else []
    return rows[0].checkpoint + rows[0].line if rows else None


def _behind(store: LedgerStore, attempt: _Attempt, note: str, size: int,
            clock: Clock) -> SyncOutcome:
    """The witness cosigned a larger tree of this ledger than the ledger now has."""
    detail = (f"witness cosigned tree size {attempt.old_size} of this ledger, which now has "
              f"only {size} entries: rolled back or forked")
    with store.write():
        insert_refusal(store, Refusal(int(clock()), attempt.witness.vkey, 0, attempt.old_size,
                                      size, f"(not sent)\n{note}", detail,
                                      _held(store, attempt.witness, attempt.old_size)))
    return SyncOutcome(attempt.witness.name, size, "refused", detail)


def _settle(store: LedgerStore, attempt: _Attempt, note: str, checkpoint: Checkpoint,
            clock: Clock) -> SyncOutcome:
    name, size = attempt.witness.name, checkpoint.tree_size
    if attempt.status is None:
        return SyncOutcome(name, size, "unreachable", attempt.error)
    status, answer = attempt.status, attempt.answer.strip()
    if status == 200:  # noqa: PLR2004
        try:
            text, found = open_cosignatures(note + attempt.answer, [attempt.witness.verifier])
        except RadledgerError as exc:
            return SyncOutcome(name, size, "error", f"bad cosignature: {exc}", status)
        if not found:
            return SyncOutcome(name, size, "error", "no cosignature by the pinned key", status)
        cosig = found[0]
        with store.write():
            insert_cosignature(store, StoredCosignature(size, attempt.witness.vkey, cosig.line,
                                                        cosig.timestamp, note))
        return SyncOutcome(name, size, "cosigned", f"cosigned at {cosig.timestamp}", status)
    if 400 <= status < 500:  # noqa: PLR2004
        with store.write():
            insert_refusal(store, Refusal(int(clock()), attempt.witness.vkey, status,
                                          attempt.old_size, size, attempt.body, attempt.answer,
                                          _held(store, attempt.witness, attempt.old_size)))
        return SyncOutcome(name, size, "refused", answer[:500], status)
    return SyncOutcome(name, size, "error", f"HTTP {status}: {answer[:500]}", status)


def witness_latest(target: Ledger | Workspace | LedgerStore, home: LedgerHome | Path, *,
                   timeout: float = TIMEOUT_S, clock: Clock = time.time) -> list[SyncOutcome]:
    """Best effort, for the append paths after a commit: sync every configured witness.

    Never raises: a down or refusing witness, or any other failure, becomes an outcome
    (refusals are also stored as evidence), so witnessing can lag but never stops appending.
    """
    if isinstance(target, Workspace):
        target = target.ledger
    store = target.store if isinstance(target, Ledger) else target
    path = home.path if isinstance(home, LedgerHome) else home
    try:
        configured = load_witnesses(path).witnesses
        if not configured:
            return []
        return sync_witnesses(store, configured, timeout=timeout, clock=clock)
    except Exception as exc:  # noqa: BLE001 - best effort by contract
        return [SyncOutcome("*", 0, "error", f"{type(exc).__name__}: {exc}")]


# -- reading the evidence -------------------------------------------------------------------
def checkpoint_with_cosignatures(store: LedgerStore, tree_size: int | None = None) -> str:
    """The signed checkpoint of ``tree_size`` (default: the latest) with every stored
    cosignature on exactly that note appended: one note, one line per cosigner.

    Lines that no longer verify (a tampered table) are left out. Raises InputError if there
    is no such checkpoint.
    """
    note = store.checkpoint(tree_size)
    if note is None:
        raise InputError("the ledger has no checkpoint yet" if tree_size is None
                         else f"no checkpoint for tree size {tree_size}")
    size = parse_checkpoint(parse_note(note).text).tree_size
    lines: list[str] = []
    for row in cosignatures(store, tree_size=size):
        if row.checkpoint != note or len(lines) >= MAX_SIGNATURES - 1:
            continue
        if _verifies(note, row):
            lines.append(row.line)
    return note + "".join(lines)


def _verifies(note: str, row: StoredCosignature) -> bool:
    try:
        return bool(open_cosignatures(note + row.line, [parse_witness_vkey(row.witness)])[1])
    except (InputError, VerificationError):
        return False


def cosigners(store: LedgerStore, witnesses: Sequence[WitnessConfig | CosignatureVerifier]
              ) -> list[str]:
    """Verifier keys of the given witnesses whose cosignature on the latest checkpoint is
    stored and verifies."""
    note = store.checkpoint()
    if note is None:
        return []
    size = parse_checkpoint(parse_note(note).text).tree_size
    keys = {w.vkey for w in witnesses}
    return sorted({row.witness for row in cosignatures(store, tree_size=size)
                   if row.witness in keys and row.checkpoint == note and _verifies(note, row)})


def witnessed(store: LedgerStore, witnesses: Sequence[WitnessConfig | CosignatureVerifier],
              quorum: int) -> bool:
    """True if at least ``quorum`` of ``witnesses`` cosigned the latest checkpoint (k of n).

    Requires quorum >= 0 (ValueError). Only cosignatures by the pinned keys given count.
    """
    if quorum < 0:
        raise ValueError("quorum must be >= 0")
    return len(cosigners(store, witnesses)) >= quorum
