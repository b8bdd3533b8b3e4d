"""``radledger append``: one entry from options, or a stream of JSON lines from stdin.

In stream mode each input line is ``{"kind": ..., "body": {...}, "subject": {...}, "refs": [...]}``
(subject and refs optional). Lines are batched: whatever has arrived while the previous batch
was being written goes into the next transaction and block. ``INDEX LEAF_HASH_HEX`` is printed
for each entry only after its batch has committed: that line is the acknowledgement.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import deque
from typing import Annotated, BinaryIO

import typer

from radledger.cli.common import HomeOption, JsonOption, echo_json, open_home
from radledger.core import jcs
from radledger.core.note import Signer
from radledger.errors import InputError, RadledgerError
from radledger.ledger.drafts import draft_from_json
from radledger.ledger.keyadmin import load_signer
from radledger.ledger.service import Ledger, PreparedLines, Receipt
from radledger.ledger.signing import POOL_MIN_BATCH, Line, SigningPool

MAX_BATCH = 4096


def _private_stdin() -> BinaryIO:
    """stdin as a file object of our own (a dup of fd 0).

    The signing pool forks while the reader thread is blocked inside a read, holding that file
    object's lock; a forked worker closes ``sys.stdin`` on start and would wait for that lock
    forever. Reading through a separate object keeps ``sys.stdin``'s lock free.
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdin.buffer  # not a real file (tests pass a BytesIO)
    return os.fdopen(os.dup(fd), "rb")


def _reader(stream: BinaryIO, chunks: queue.Queue[list[bytes] | None]) -> None:
    """Read whatever stdin has (up to 1 MiB at a time) and queue its complete lines: per-line
    queue traffic would cost more than parsing the line."""
    read = getattr(stream, "read1", stream.read)
    partial = b""
    while data := read(1 << 20):
        lines = (partial + data).split(b"\n")
        partial = lines.pop()
        if lines:
            chunks.put(lines)
    if partial:
        chunks.put([partial])
    chunks.put(None)


def _emit(receipts: list[Receipt], as_json: bool) -> None:
    out = sys.stdout
    for r in receipts:
        if as_json:
            out.write(f'{{"index":{r.index},"leaf_hash":"{r.leaf_hash.hex()}","new":'
                      f'{"true" if r.new else "false"}}}\n')
        else:
            out.write(f"{r.index} {r.leaf_hash.hex()}\n")
    out.flush()


def stream_append(ledger: Ledger, signer: Signer, stream: BinaryIO, as_json: bool) -> int:
    """Append JSON lines from ``stream`` in batches; returns how many entries were appended.

    Two stages overlap: while one batch is parsed and signed (on the signing pool, on every
    core, once batches are large), the previous one is committed and acknowledged. On a bad
    line, the good lines before it are appended and acknowledged, then InputError is raised
    naming the line.
    """
    chunks: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=8)
    threading.Thread(target=_reader, args=(stream, chunks), daemon=True).start()
    reader = _LineReader(chunks)
    signing: PreparedLines | None = None
    total = 0
    while True:
        # with a batch in signing, never wait for input: its acknowledgements come first
        batch = reader.next_batch(block=signing is None)
        if ledger.signing_pool is None and len(batch) >= POOL_MIN_BATCH:
            ledger.signing_pool = SigningPool(signer)
        following = ledger.prepare_lines(batch, signer, "stdin line") if batch \
            else None
        if signing is not None:
            receipts, error = signing.commit()
            _emit(receipts, as_json)
            total += len(receipts)
            if error is not None:
                raise error  # the batch being signed came after the bad line: dropped
        signing = following
        if reader.eof and signing is None:
            return total


class _LineReader:
    """Collects numbered, non-blank lines into batches: whatever has arrived, up to MAX_BATCH."""

    def __init__(self, chunks: queue.Queue[list[bytes] | None]) -> None:
        self.chunks = chunks
        self.pending: deque[bytes] = deque()
        self.number = 0
        self.eof = False

    def _fill(self, block: bool) -> bool:
        """Move the next chunk of lines into ``pending``; False if none is ready."""
        try:
            chunk = self.chunks.get(block=block)
        except queue.Empty:
            return False
        if chunk is None:
            self.eof = True
            return False
        self.pending.extend(chunk)
        return True

    def next_batch(self, block: bool) -> list[Line]:
        batch: list[Line] = []
        while len(batch) < MAX_BATCH:
            if not self.pending and (self.eof or not self._fill(block and not batch)):
                break
            line = self.pending.popleft()
            self.number += 1
            if line.strip():
                batch.append((self.number, line))
        return batch


def append(
    source: Annotated[str | None, typer.Argument(
        help="'-' to read JSON lines ({\"kind\", \"body\", \"subject\", \"refs\"}) from stdin.",
        metavar="[-]")] = None,
    kind: Annotated[str | None, typer.Option(
        help="Entry kind, e.g. protocol.registered or a lab's own x-lab.qc-check.")] = None,
    body: Annotated[str | None, typer.Option(help="The body as a JSON object.")] = None,
    subject: Annotated[str | None, typer.Option(
        help="Pseudonymous subject keys as a JSON object.")] = None,
    ref: Annotated[list[int] | None, typer.Option(
        help="Index of an entry this one builds on (repeatable).")] = None,
    as_name: Annotated[str | None, typer.Option(
        "--as", help="Sign with the actor key NAME from keys/actors (default: your own).")
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append one entry (--kind, --body) or a stream of JSON lines (`append -`)."""
    loaded, ledger = open_home(home)
    signer = load_signer(loaded, as_name)
    if source == "-":
        if kind or body or subject or ref:
            raise InputError("`append -` reads everything from stdin; drop --kind/--body")
        try:
            stream_append(ledger, signer, _private_stdin(), as_json)
        finally:
            if ledger.signing_pool is not None:
                ledger.signing_pool.close()
        return
    if source is not None:
        raise InputError(f"unexpected argument {source!r}; use '-' to read stdin")
    if kind is None or body is None:
        raise InputError("give --kind and --body, or '-' to read JSON lines from stdin")
    value: dict[str, jcs.JSONValue] = {"kind": kind, "body": _json_option(body, "--body"),
                                       "refs": list(ref or [])}
    if subject is not None:
        value["subject"] = _json_option(subject, "--subject")
    draft = draft_from_json(value, "append")
    (receipt,) = ledger.append_drafts([draft], signer)
    if as_json:
        echo_json({"index": receipt.index, "leaf_hash": receipt.leaf_hash.hex()})
    else:
        typer.echo(f"{receipt.index} {receipt.leaf_hash.hex()}")


def _json_option(text: str, option: str) -> jcs.JSONValue:
    try:
        return jcs.loads(text)
    except RadledgerError as exc:
        raise InputError(f"{option} is not valid JSON: {exc}") from None
