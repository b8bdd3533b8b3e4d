"""Appending to the ledger: sequence, integrate, seal (DESIGN section 2).

An append runs in one write transaction, in three explicit steps:

1. ``_sequence``: entries are checked and given dense indices (``entries`` rows);
2. ``_integrate``: the RFC 6962 tree is extended and its new perfect nodes stored;
3. ``_seal``: a block over the new entries is chained to the previous one and its checkpoint
   signed with the ledger key.

The transaction commits all three or nothing, so the acknowledgement a caller gets (the
returned receipts) always refers to entries that are durable, integrated and sealed, and a
tree size is never signed twice. Signing entries happens before the writer is taken, so the
single writer is held only for hashing and storage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from radledger.core.block import BlockHeader, next_header
from radledger.core.checkpoint import Checkpoint, block_extension, sign_checkpoint
from radledger.core.entry import Entry, actor_id, parse_entry
from radledger.core.keys import KEY_KINDS, KeyRing, check_entry
from radledger.core.merkle import CompactRange, leaf_hash
from radledger.core.note import Signer
from radledger.errors import EntryError, InputError, StorageCorrupt
from radledger.ledger.drafts import Draft
from radledger.ledger.signing import Line, LinesResult, SigningPool, sign_drafts, sign_lines
from radledger.storage.base import LedgerStore

Clock = Callable[[], float]
__all__ = ["Clock", "Draft", "Ledger", "PreparedLines", "Receipt", "rfc3339"]


@dataclass(frozen=True)
class Receipt:
    """The acknowledgement of one entry: durable, integrated and sealed at ``index``."""

    index: int
    leaf_hash: bytes
    new: bool


def rfc3339(t: float) -> str:
    """Unix time as RFC 3339 UTC with microseconds."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class PreparedLines:
    """JSON lines being parsed and signed for one append (see Ledger.prepare_lines)."""

    ledger: Ledger
    actor: str
    label: str
    signed: Callable[[], LinesResult]

    def commit(self) -> tuple[list[Receipt], InputError | None]:
        """Append every good line before the first bad one, in one block; returns their
        receipts and the bad line's error (None if all were good)."""
        entries, error = self.signed()
        floor = self.ledger.store.entry_count()
        for position, (number, _, _, refs) in enumerate(entries):
            if not refs:
                continue
            try:
                self.ledger.check_refs(refs, floor)
            except InputError as exc:
                entries, error = entries[:position], type(exc)(f"{self.label} {number}: {exc}")
                break
        if not entries:
            return [], error
        items = [(kind, data) for _, kind, data, _ in entries]
        return self.ledger._append(items, trusted_actor=self.actor), error  # noqa: SLF001


class Ledger:
    """The append path and the state it caches between transactions."""

    def __init__(self, store: LedgerStore, origin: str, ledger_signer: Signer,
                 clock: Clock = time.time) -> None:
        self.store = store
        self.origin = origin
        self.ledger_signer = ledger_signer
        self.clock = clock
        self._keyring = KeyRing()
        self._keys_synced_to = 0  # key entries below this index are applied
        self._range: CompactRange | None = None
        self.signing_pool: SigningPool | None = None

    # -- public API -------------------------------------------------------------------------
    def append_drafts(self, drafts: Sequence[Draft], signer: Signer) -> list[Receipt]:
        """Sign ``drafts`` as ``signer`` and append them in one block.

        Raises EntryError/CanonicalJSONError for a bad draft (nothing is appended),
        SignatureError if the signer is not a key in force, StorageError on storage failure.
        """
        if not drafts:
            return []
        if any(draft.refs for draft in drafts):  # one query less when nothing refers back
            floor = self.store.entry_count()
            for position, draft in enumerate(drafts):
                try:
                    self.check_refs(draft.refs, floor)
                except InputError as exc:
                    raise type(exc)(f"draft {position}: {exc}") from None
        claimed = rfc3339(self.clock())
        pool = self.signing_pool
        if pool is not None and pool.signer == signer:
            datas = pool.submit(drafts, claimed)()
        else:
            datas = sign_drafts(drafts, signer, claimed)
        items = [(d.kind, data) for d, data in zip(drafts, datas, strict=True)]
        return self._append(items, trusted_actor=actor_id(signer.name,
                                                          signer.signing_key.public_key))

    def prepare_lines(self, lines: Sequence[Line], signer: Signer, label: str
                      ) -> PreparedLines:
        """Start parsing and signing JSON lines (on the signing pool, if it is this signer's);
        ``commit()`` on the result appends the good ones. The stream path of ``append -``."""
        claimed = rfc3339(self.clock())
        pool = self.signing_pool
        if pool is not None and pool.signer == signer:
            signed = pool.submit_lines(lines, claimed, label)
        else:
            done = sign_lines(lines, signer, claimed, label)
            signed = lambda: done  # noqa: E731 - a thunk like the pool's
        return PreparedLines(self, actor_id(signer.name, signer.signing_key.public_key), label,
                             signed)

    def append_signed(self, entries: Sequence[bytes]) -> list[Receipt]:
        """Append entries their actors signed themselves (every one is verified).

        An entry already in the ledger (same leaf hash) is not stored again; its receipt has
        ``new=False``.
        """
        return self._append([("", data) for data in entries], trusted_actor=None)

    def keyring(self) -> KeyRing:
        """The key ring as of the last transaction (refreshed from storage)."""
        self._sync_keys()
        return self._keyring

    # -- the three steps --------------------------------------------------------------------
    def _append(self, items: list[tuple[str, bytes]], trusted_actor: str | None
                ) -> list[Receipt]:
        try:
            with self.store.write():
                self._sync_keys()
                size = self.store.entry_count()
                receipts, rows = self._sequence(items, size, trusted_actor)
                if rows:
                    crange, nodes = self._integrate(size, [row[2] for row in rows])
                    self.store.insert_entries(rows)
                    self.store.insert_nodes(nodes)
                    self._seal(crange)
        except BaseException:
            # the key ring may hold keys from the rolled-back batch: rebuild it next time
            self._keyring, self._keys_synced_to, self._range = KeyRing(), 0, None
            raise
        # only after COMMIT: the cached frontier and key ring now match storage
        if rows:
            self._range = crange
        return receipts

    def _sequence(self, items: list[tuple[str, bytes]], size: int, trusted_actor: str | None
                  ) -> tuple[list[Receipt], list[tuple[int, str, bytes, bytes]]]:
        receipts: list[Receipt] = []
        rows: list[tuple[int, str, bytes, bytes]] = []
        leaves = [leaf_hash(data) for _, data in items]
        seen = self.store.find_leaves(leaves)  # already stored: the same entry sent again
        for (given_kind, data), leaf in zip(items, leaves, strict=True):
            kind = given_kind
            existing = seen.get(leaf)
            if existing is not None:
                receipts.append(Receipt(existing, leaf, new=False))
                continue
            index = size + len(rows)
            if trusted_actor is not None and kind not in KEY_KINDS:
                # signed a moment ago by this process; only the signer's standing is checked
                self._keyring.key_for(trusted_actor, index)
            else:
                entry = self._checked(index, data)
                kind = entry.kind
                if kind in KEY_KINDS:
                    self._keyring.apply(index, entry)
                    self._keys_synced_to = index + 1
            rows.append((index, kind, leaf, data))
            seen[leaf] = index
            receipts.append(Receipt(index, leaf, new=True))
        return receipts, rows

    def _integrate(self, size: int, leaves: list[bytes]
                   ) -> tuple[CompactRange, list[tuple[int, int, bytes]]]:
        crange = self._range if self._range is not None and self._range.size == size else None
        self._range = None  # the cache is restored only after a successful commit
        if crange is None:
            crange = CompactRange.from_nodes(size, self._read_node)
        nodes: list[tuple[int, int, bytes]] = []
        for leaf in leaves:
            nodes.extend(crange.append(leaf))
        return crange, nodes

    def _seal(self, crange: CompactRange) -> BlockHeader:
        latest = self.store.latest_block()
        header = next_header(latest[0] if latest else None, crange.size, crange.root(),
                             int(self.clock()))
        checkpoint = Checkpoint(
            self.origin, header.tree_size, header.root_hash,
            (block_extension(header.height, header.block_hash(), header.sealed_time),),
        )
        self.store.insert_block(header, sign_checkpoint(checkpoint, self.ledger_signer))
        return header

    # -- helpers ----------------------------------------------------------------------------
    def _checked(self, index: int, data: bytes) -> Entry:
        try:
            return check_entry(self._keyring, index, data)
        except InputError as exc:
            raise type(exc)(f"entry for index {index}: {exc}") from None

    def check_refs(self, refs: tuple[int | str, ...], floor: int) -> None:
        """Refs must name entries already in the ledger (index < floor, or a known leaf hash).

        Raises EntryError naming the ref.
        """
        for ref in refs:
            if isinstance(ref, int) and not isinstance(ref, bool) and ref >= floor:
                raise EntryError(f"ref {ref} is not an existing entry (ledger size {floor})")
            if isinstance(ref, str) and self.store.find_leaf(bytes.fromhex(ref)) is None:
                raise EntryError(f"ref {ref} is not the leaf hash of an entry in this ledger")

    def _sync_keys(self) -> None:
        for index, data in self.store.key_entries(self._keys_synced_to):
            entry = parse_entry(data)
            self._keyring.apply(index, entry)
            self._keys_synced_to = index + 1

    def _read_node(self, level: int, index: int) -> bytes:
        node = self.store.node(level, index)
        if node is None:
            raise StorageCorrupt(f"tree node (level {level}, index {index}) is missing")
        return node
