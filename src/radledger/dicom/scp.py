"""The DICOM Storage SCP behind ``radledger scp``: C-ECHO and C-STORE (PS3.4 Annex A, B;
PS3.7 section 9.1) on pynetdicom's association server.

Each C-STORE hands the dataset, as the peer encoded it, and the File Meta Information
pynetdicom derives from the request to a ``Store`` callback, and is answered only when that
returns (the instance stored and its entry durable: Success, 0000H), or with the failure
status for what it raised: InputError (radledger refuses the instance) is 0xC000 "cannot
understand", StorageError or OSError (disk or ledger) is 0xA700 "out of resources", so the
peer sends it again later. Nothing here decodes the dataset.

Every association is served on its own thread (pynetdicom's). Accepted sockets get
TCP_NODELAY and acknowledge at once (TCP_QUICKACK): without them each C-STORE of a peer
that sends its command and dataset PDUs separately waits ~40 ms for a delayed ACK.

What is reported (a ``Report`` callback, one line each) names the SOP Class, the transfer
syntax, the calling AE title and the peer's address, never a value of the dataset
(RELIABILITY 27); pynetdicom's own log, which can quote identifiers, is silenced.
"""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pydicom.dataset import Dataset
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode_file_meta
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from radledger.errors import InputError, StorageError

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: Out of Resources (PS3.4 B.2.3)
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand
MAX_PDU = 256 * 1024  # what peers may send in one P-DATA PDU: fewer, larger writes
_UID = re.compile(r"[0-9.]{1,64}")  # PS3.5 9.1 (and what pydicom writes without a warning)
# what an Error Comment (LO) can hold
_COMMENT_CHARS = 64

# in order of preference: of the syntaxes a peer proposes in one presentation context, the
# first here is accepted (uncompressed first, as DCMTK's storescp does; the pixel hash is the
# same either way for lossless ones)
TRANSFER_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
    JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, HTJ2KLossless,
    HTJ2KLosslessRPCL, HTJ2K, RLELossless,
)

_config.LOG_HANDLER_LEVEL = "none"
# pynetdicom logs under "pynetdicom.*" (request identifiers, dataset dumps at debug level):
# none of it reaches a handler, ours or an application's
_LOG = logging.getLogger("pynetdicom")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False
_LOG.setLevel(logging.CRITICAL + 1)


@dataclass(frozen=True)
class Delivery:
    """One received instance: the encoded File Meta Information group (no preamble, no
    "DICM"), the dataset as the peer encoded it, who sent it and what it is."""

    file_meta: bytes
    dataset: bytes
    calling_ae: str
    peer: str  # "ip:port"
    what: str  # SOP Class name (transfer syntax name), for reports


@dataclass(frozen=True)
class Stored:
    """What a ``Store`` callback did with a delivery: its entry, and whether it is new."""

    index: int
    new: bool


Store = Callable[[Delivery], Stored]
Report = Callable[[str], None]


def storage_contexts() -> list[PresentationContext]:
    """Verification, and every storage SOP Class with ``TRANSFER_SYNTAXES``."""
    return [build_context(Verification)] + [
        build_context(cx.abstract_syntax, list(TRANSFER_SYNTAXES))
        for cx in AllStoragePresentationContexts if cx.abstract_syntax is not None]


# Linux only: acknowledge at once rather than up to 40 ms later
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class _PromptSocket(socket.socket):
    """An accepted connection that acknowledges what it receives at once.

    A peer that leaves Nagle's algorithm on (DCMTK's storescu does) sends the dataset PDU of
    a C-STORE only once its command PDU is acknowledged; a delayed ACK then costs ~40 ms per
    instance. Linux clears TCP_QUICKACK as it goes, so it is set again after every read."""

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        data = super().recv(bufsize, flags)
        if _QUICKACK is not None and data:
            self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return data


class _PromptServer(ThreadedAssociationServer):
    """pynetdicom's server; accepted sockets have TCP_NODELAY (our PDUs leave at once) and
    acknowledge promptly (the peer's do too)."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = super().get_request()
        if isinstance(sock, ssl.SSLSocket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, address
        prompt = _PromptSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        prompt.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return prompt, address


class StorageSCP:
    """A bound, listening Storage SCP; ``serve`` starts answering, ``stop`` ends it."""

    def __init__(self, ae_title: str, host: str, port: int, store: Store,
                 report: Report) -> None:
        """Bind ``host:port`` (0: a free port). Raises InputError for an unusable AE title
        or address."""
        self._store, self._report = store, report
        try:
            ae = AE(ae_title)
        except ValueError as exc:
            raise InputError(f"unusable AE title: {exc}") from None
        ae.maximum_pdu_size = MAX_PDU
        try:
            server = ae.make_server((host, port), contexts=storage_contexts(),
                                    evt_handlers=[(evt.EVT_C_STORE, self._on_store)],
                                    server_class=_PromptServer)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
        self._ae, self._server = ae, server
        self._thread = threading.Thread(target=server.serve_forever, name="radledger-scp",
                                        daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port listened on (the real port when 0 was asked for)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def serve(self) -> None:
        """Start accepting associations (on a thread of its own)."""
        self._thread.start()

    def stop(self, grace: float) -> None:
        """Accept no more associations; give the open ones ``grace`` seconds to end, then
        abort them and wait for their last C-STORE handler to return."""
        # not pynetdicom's shutdown(): it expects a server its AE started itself
        socketserver.BaseServer.shutdown(self._server)  # the accept loop ends
        self._server.server_close()  # the listening socket closes
        deadline = time.monotonic() + grace
        while self._server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        for assoc in self._server.active_associations:
            assoc.abort()
        for assoc in self._server.active_associations:
            assoc.join(timeout=grace)

    def _on_store(self, event: evt.Event) -> Dataset | int:
        what = f"{UID(event.context.abstract_syntax).name} " \
               f"({UID(event.context.transfer_syntax).name})"
        requestor = event.assoc.requestor
        calling, peer = requestor.ae_title, f"{requestor.address}:{requestor.port}"
        sender = f"from {calling} at {peer}"
        request = cast(C_STORE, event.request)
        if not _UID.fullmatch(str(request.AffectedSOPInstanceUID or "")):
            # it goes into the file meta: pydicom would warn, quoting it
            return self._refuse(CANNOT_UNDERSTAND, f"refused {what} {sender}",
                                "the request's Affected SOP Instance UID is not a UID")
        try:
            stored = self._store(Delivery(encode_file_meta(event.file_meta),
                                          event.encoded_dataset(include_meta=False),
                                          calling, peer, what))
        except InputError as exc:
            return self._refuse(CANNOT_UNDERSTAND, f"refused {what} {sender}", str(exc))
        except (StorageError, OSError) as exc:
            return self._refuse(OUT_OF_RESOURCES, f"cannot store {what} {sender}", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug: the peer may retry, nothing is quoted
            where = exc.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            at = (f" at {where.tb_frame.f_code.co_filename}:{where.tb_lineno}"
                  if where is not None else "")
            return self._refuse(OUT_OF_RESOURCES, f"cannot store {what} {sender}",
                                f"internal error {type(exc).__name__}{at}")
        self._report(f"{'stored' if stored.new else 'already registered'} {what} {sender}: "
                     f"entry {stored.index}")
        return SUCCESS

    def _refuse(self, status: int, line: str, reason: str) -> Dataset:
        self._report(f"{line}: {status:#06x} {' '.join(reason.split())}")
        return _status(status, reason)


def _status(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    text = "".join(c if " " <= c <= "~" and c != "\\" else " " for c in comment)
    ds.ErrorComment = text[:_COMMENT_CHARS].strip()
    return ds

