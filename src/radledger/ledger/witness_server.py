"""A C2SP tlog-witness (https://c2sp.org/tlog-witness): ``POST <prefix>/add-checkpoint``.

The witness home holds the witness's key and its database::

    witness-home/
      witness.skey       the cosigning key (C2SP skey form, type 0x04), mode 0600
      witness.sqlite3    per log origin, every checkpoint cosigned; refused requests

Answers, in the order the spec checks them: 400 for a malformed body or an old size above the
checkpoint's size, 404 for an origin it does not witness, 403 when no signature by the log's
pinned key verifies, 409 (body: the latest cosigned size, ``text/x.tlog.size``) when the old
size is not the size it last cosigned, 409 for another root at the size it cosigned (a fork),
422 for a consistency proof that does not verify, else 200 with its cosignature line. The
check and the write of the new latest checkpoint are one database transaction, committed
before the answer is sent.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from radledger.core import merkle
from radledger.core.checkpoint import Checkpoint, parse_checkpoint
from radledger.core.cosignature import Cosigner, cosign, format_witness_skey, parse_witness_skey
from radledger.core.ed25519 import SigningKey
from radledger.core.note import Verifier, decode_base64, open_note, parse_note, parse_vkey
from radledger.errors import (
    InputError,
    KeyFormatError,
    NoteError,
    ProofError,
    RadledgerError,
    SignatureError,
)
from radledger.storage.files import write_secret
from radledger.storage.witness_store import WitnessStore

WITNESS_HOME_ENV = "RADLEDGER_WITNESS_HOME"
DEFAULT_WITNESS_HOME = "witness-home"
KEY_FILE = "witness.skey"
DATABASE = "witness.sqlite3"
MAX_BODY = 64 * 1024
"""Bytes of request body accepted; a checkpoint with 63 proof lines and 100 signatures fits."""
MAX_PROOF_LINES = 63
READ_TIMEOUT_S = 10.0
SIZE_CONTENT_TYPE = "text/x.tlog.size"

Clock = Callable[[], float]


# -- the witness home ---------------------------------------------------------------------
def resolve_witness_home(option: str | None) -> Path:
    """--dir, else $RADLEDGER_WITNESS_HOME, else ./witness-home."""
    return Path(option or os.environ.get(WITNESS_HOME_ENV) or DEFAULT_WITNESS_HOME)


def init_witness_home(path: Path, name: str | None = None) -> Cosigner:
    """Create the witness home with a new key and an empty database. Refuses an existing key.

    Raises InputError if a key is already there, KeyFormatError for an invalid name.
    """
    key_path = path / KEY_FILE
    if key_path.exists():
        raise InputError(f"{path} already holds a witness key ({KEY_FILE})")
    cosigner = Cosigner(name or f"radledger.local/witness-{secrets.token_hex(4)}",
                        SigningKey.generate())
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_secret(key_path, format_witness_skey(cosigner.name, cosigner.signing_key) + "\n")
    WitnessStore.open_or_create(path / DATABASE, cosigner.name).close()
    return cosigner


def load_witness_key(path: Path) -> Cosigner:
    """The witness key of a witness home. Raises InputError naming what is wrong."""
    try:
        text = (path / KEY_FILE).read_text().strip()
    except OSError as exc:
        raise InputError(f"no witness key at {path / KEY_FILE} ({exc.strerror}); create one "
                         "with `radledger witness init`") from None
    try:
        return parse_witness_skey(text)
    except KeyFormatError as exc:
        raise InputError(f"{path / KEY_FILE} is malformed: {exc}") from None


def parse_log_option(text: str) -> tuple[str, Verifier]:
    """``ORIGIN=VKEY``, or a bare ``VKEY`` whose key name is the origin (radledger's rule).

    Raises KeyFormatError for a malformed key.
    """
    origin, sep, vkey = text.partition("=")
    if not sep or "+" in origin:  # an origin never holds '+'; a vkey always does
        verifier = parse_vkey(text)
        return verifier.name, verifier
    if not origin:
        raise KeyFormatError(f"--log {text!r:.80}: the origin before '=' is empty")
    return origin, parse_vkey(vkey)


# -- the protocol ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """An HTTP answer."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request body."""

    old_size: int
    proof: list[bytes]
    note: str


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Split ``old N\\n``, proof lines, an empty line, then the signed checkpoint.

    Raises NoteError naming what is malformed (answered with 400).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")  # header lines are never empty
    if not sep:
        raise NoteError("request body has no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old "):
        raise NoteError("request body does not start with the old size line 'old <size>'")
    digits = first[4:]
    if not digits.isascii() or not digits.isdigit() or (digits != "0" and digits[0] == "0"):
        raise NoteError(f"old size {digits!r:.40} is not a decimal without leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise NoteError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in lines[1:]:
        digest = decode_base64(line, "consistency proof line", NoteError)
        if len(digest) != merkle.HASH_SIZE:
            raise NoteError(f"consistency proof hash is {len(digest)} bytes, not 32")
        proof.append(digest)
    return AddCheckpoint(int(digits), proof, note)


class Witness:
    """The add-checkpoint logic over a witness store; thread-safe (one request at a time)."""

    def __init__(self, cosigner: Cosigner, store: WitnessStore,
                 logs: Mapping[str, Sequence[Verifier]], clock: Clock = time.time) -> None:
        self.cosigner = cosigner
        self.store = store
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.clock = clock
        self._lock = threading.Lock()

    def add_checkpoint(self, body: bytes) -> Reply:
        """Answer one add-checkpoint request (see the module docstring for the statuses)."""
        try:
            request = parse_add_checkpoint(body)
            checkpoint = parse_checkpoint(parse_note(request.note).text)
        except NoteError as exc:
            return Reply(400, f"malformed request: {exc}\n")
        keys = self.logs.get(checkpoint.origin)
        if not keys:
            return Reply(404, f"unknown log origin {checkpoint.origin!r:.200}\n")
        try:
            open_note(request.note, keys)
        except (SignatureError, NoteError) as exc:
            return Reply(403, f"no valid signature by a trusted key of the log: {exc}\n")
        with self._lock, self.store.write():
            return self._check_and_cosign(request, checkpoint, body)

    def _check_and_cosign(self, request: AddCheckpoint, checkpoint: Checkpoint,
                          body: bytes) -> Reply:
        latest = self.store.latest(checkpoint.origin)
        latest_size, latest_root = latest if latest is not None else (0, b"")
        if request.old_size > checkpoint.tree_size:
            # signed by the log yet smaller than what it showed before: keep it (rollback)
            return self._refuse(400, f"old size {request.old_size} is larger than the "
                                f"checkpoint's size {checkpoint.tree_size}", checkpoint, body,
                                record=latest_size > checkpoint.tree_size)
        if request.old_size != latest_size:
            return Reply(409, f"{latest_size}\n", SIZE_CONTENT_TYPE)
        problem = _proof_problem(request, checkpoint, latest_root)
        if problem is not None:
            return self._refuse(*problem, checkpoint, body, record=True)
        now = int(self.clock())
        self.store.record_cosigned(checkpoint.origin, checkpoint.tree_size,
                                   checkpoint.root_hash, now, request.note)
        return Reply(200, cosign(checkpoint.marshal(), self.cosigner, now))

    def _refuse(self, status: int, reason: str, checkpoint: Checkpoint, body: bytes,
                *, record: bool = False) -> Reply:
        """A refusal. With ``record``, the request (signed by the log, contradicting what was
        cosigned) is kept as evidence. Requires the open write transaction."""
        if record:
            self.store.record_refused(checkpoint.origin, int(self.clock()), status, reason,
                                      body.decode("utf-8", "replace"))
        return Reply(status, reason + "\n")


def _proof_problem(request: AddCheckpoint, checkpoint: Checkpoint, latest_root: bytes
                   ) -> tuple[int, str] | None:
    """(status, reason) if the proof does not take the cosigned tree to ``checkpoint``."""
    old, size = request.old_size, checkpoint.tree_size
    if old in (0, size):
        if request.proof:
            return 422, f"a consistency proof from size {old} to {size} must be empty"
        if old == size and checkpoint.root_hash != latest_root:
            return 409, (f"fork: tree size {size} was cosigned with root {latest_root.hex()}, "
                         f"not {checkpoint.root_hash.hex()}")
        return None
    try:
        merkle.verify_consistency(old, size, request.proof, latest_root, checkpoint.root_hash)
    except ProofError as exc:
        return 422, f"consistency proof from size {old} does not verify: {exc}"
    return None


# -- HTTP -------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    witness: Witness


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S  # socket timeout: a slow or silent client is dropped

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/add-checkpoint":
            self._send(Reply(404, "not found; the witness serves POST /add-checkpoint\n"))
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            self._send(Reply(411, "Content-Length required\n"))
            return
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True
            self._send(Reply(413, f"request body over {MAX_BODY} bytes\n"))
            return
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True
            return
        if len(body) != length:
            self.close_connection = True
            return
        try:
            reply = self.server.witness.add_checkpoint(body)
        except RadledgerError as exc:  # storage busy, full or corrupt: nothing was cosigned
            reply = Reply(503, f"witness unavailable: {exc}\n")
        self._send(reply)

    def do_GET(self) -> None:
        self._send(Reply(405, "use POST /add-checkpoint\n"))

    def _send(self, reply: Reply) -> None:
        data = reply.body.encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        """Requests are not logged: the database keeps what matters."""


def make_server(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    """A bound (not yet serving) HTTP server for ``witness``; port 0 picks a free port."""
    server = _Server((host, port), _Handler)
    server.witness = witness
    return server


def open_witness(home: Path, logs: Mapping[str, Sequence[Verifier]],
                 clock: Clock = time.time) -> Witness:
    """The witness of a witness home, its database opened (created if missing)."""
    cosigner = load_witness_key(home)
    return Witness(cosigner, WitnessStore.open_or_create(home / DATABASE, cosigner.name), logs,
                   clock)
