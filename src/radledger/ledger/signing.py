"""Signing drafts as entries, in this process or on every core.

Ed25519 signing dominates the cost of an append, so large batches are signed by a pool of
worker processes that hold the signer's key. Signatures are deterministic (RFC 8032): the
bytes are the same whichever process signs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from radledger.core import jcs
from radledger.core.ed25519 import SigningKey
from radledger.core.entry import Statement, actor_id, sign_entry
from radledger.core.note import Signer
from radledger.errors import InputError
from radledger.ledger.drafts import Draft, draft_from_json
from radledger.ledger.workers import worker_pool

POOL_MIN_BATCH = 512  # below this, handing work to processes costs more than it saves

Line = tuple[int, bytes]  # (line number, JSON text)
LineEntry = tuple[int, str, bytes, tuple[int | str, ...]]  # line number, kind, entry, refs
LinesResult = tuple[list[LineEntry], InputError | None]

_worker_signer: Signer | None = None


def sign_drafts(drafts: Sequence[Draft], signer: Signer, claimed_time: str,
                first_position: int = 0) -> list[bytes]:
    """Sign each draft as ``signer``; returns the canonical entry bytes in order.

    Raises the draft's InputError with its position in the batch.
    """
    actor = actor_id(signer.name, signer.signing_key.public_key)
    sign = signer.signing_key.sign
    out = []
    for offset, draft in enumerate(drafts):
        statement = Statement(draft.kind, actor, claimed_time, draft.subject, draft.body,
                              draft.refs)
        try:
            out.append(sign_entry(statement, sign))
        except InputError as exc:
            raise type(exc)(f"draft {first_position + offset}: {exc}") from None
    return out


def sign_lines(lines: Sequence[Line], signer: Signer, claimed_time: str,
               label: str) -> LinesResult:
    """Parse JSON lines ``{"kind", "body", "subject"?, "refs"?}``, validate and sign each as
    ``signer``. Stops at the first bad line: returns the entries before it and its InputError,
    whose message names ``label`` and the line number. Refs are checked later, by the writer.
    """
    actor = actor_id(signer.name, signer.signing_key.public_key)
    sign = signer.signing_key.sign
    out: list[LineEntry] = []
    for number, text in lines:
        where = f"{label} {number}"
        try:
            value = jcs.loads(text)
        except InputError as exc:
            return out, type(exc)(f"{where}: {exc}")
        try:
            draft = draft_from_json(value, where)  # names ``where`` itself
        except InputError as exc:
            return out, exc
        statement = Statement(draft.kind, actor, claimed_time, draft.subject, draft.body,
                              draft.refs)
        try:
            out.append((number, draft.kind, sign_entry(statement, sign), draft.refs))
        except InputError as exc:
            return out, type(exc)(f"{where}: {exc}")
    return out, None


def _init_worker(name: str, seed: bytes) -> None:
    global _worker_signer  # noqa: PLW0603 - per-process worker state
    _worker_signer = Signer(name, SigningKey.from_seed(seed))


def _sign_chunk(drafts: list[Draft], claimed_time: str, first_position: int) -> list[bytes]:
    assert _worker_signer is not None
    return sign_drafts(drafts, _worker_signer, claimed_time, first_position)


def _sign_lines_chunk(lines: list[Line], claimed_time: str, label: str) -> LinesResult:
    assert _worker_signer is not None
    return sign_lines(lines, _worker_signer, claimed_time, label)


class SigningPool:
    """Worker processes that sign drafts as one signer."""

    def __init__(self, signer: Signer, workers: int | None = None) -> None:
        self.signer = signer
        self.workers = workers or os.cpu_count() or 1
        self._pool = worker_pool(self.workers, _init_worker,
                                 (signer.name, signer.signing_key.seed))

    def submit(self, drafts: Sequence[Draft], claimed_time: str) -> Callable[[], list[bytes]]:
        """Start signing ``drafts`` across the workers; returns a function that waits for the
        entry bytes (and raises a draft's InputError). Small batches are signed at once."""
        if len(drafts) < POOL_MIN_BATCH:
            done = sign_drafts(drafts, self.signer, claimed_time)
            return lambda: done
        step = -(-len(drafts) // self.workers)
        futures = [self._pool.submit(_sign_chunk, list(drafts[i:i + step]), claimed_time, i)
                   for i in range(0, len(drafts), step)]

        def result() -> list[bytes]:
            return [data for future in futures for data in future.result()]

        return result

    def submit_lines(self, lines: Sequence[Line], claimed_time: str, label: str
                     ) -> Callable[[], LinesResult]:
        """Like ``sign_lines``, split across the workers; returns a function that waits."""
        if len(lines) < POOL_MIN_BATCH:
            done = sign_lines(lines, self.signer, claimed_time, label)
            return lambda: done
        step = -(-len(lines) // self.workers)
        futures = [self._pool.submit(_sign_lines_chunk, list(lines[i:i + step]), claimed_time,
                                     label) for i in range(0, len(lines), step)]

        def result() -> LinesResult:
            entries: list[LineEntry] = []
            for future in futures:
                part, error = future.result()
                entries.extend(part)
                if error is not None:
                    return entries, error  # the lines after a bad one are not appended
            return entries, None

        return result

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=True, cancel_futures=True)
