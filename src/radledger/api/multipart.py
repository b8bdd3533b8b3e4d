"""A streaming ``multipart/form-data`` reader (RFC 7578, RFC 2046 section 5.1) for uploads.

Each part is handed on in pieces as the body arrives, so an upload of any size goes to disk
without being held in memory; a part over its limit, too many parts, an oversized header
block or a body that ends before the closing delimiter are refused as they are seen. Every
part is taken as one file: field names and file names are not used (a file name may be a
patient's; nothing the client names a part reaches a path, a log or an answer).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Protocol

from radledger.errors import BodyTooLarge, MultipartError

MAX_HEADER_BYTES = 16 * 1024  # one part's header block
_BOUNDARY = re.compile(r"""boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))""", re.IGNORECASE)
_PREAMBLE, _AFTER_DELIMITER, _HEADERS, _BODY, _DONE = range(5)


class PartSink(Protocol):
    """Where the parts of a body go: ``start`` a part, its ``data`` in pieces, ``end``."""

    def start(self, number: int) -> None: ...
    def data(self, chunk: bytes) -> None: ...
    def end(self) -> None: ...


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type. Raises MultipartError."""
    if not content_type or content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise MultipartError("expected a multipart/form-data body (one part per file)")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise MultipartError("the multipart/form-data Content-Type has no valid boundary")
    return (match.group(1) or match.group(2)).encode("ascii", "replace")


class MultipartReader:
    """Push parser: ``feed`` the body as it arrives, then ``close``.

    Requires ``max_part >= 0`` and ``max_parts >= 1``. Raises MultipartError for a malformed
    body, BodyTooLarge for a part over ``max_part`` bytes or more than ``max_parts`` parts.
    """

    def __init__(self, boundary: bytes, sink: PartSink, max_part: int, max_parts: int) -> None:
        # the body is read as if preceded by CRLF, so the first delimiter is like the others
        self._delimiter = b"\r\n--" + boundary
        self._buffer = b"\r\n"
        self._state = _PREAMBLE
        self._sink = sink
        self._max_part, self._max_parts = max_part, max_parts
        self.parts = 0
        self._part_size = 0

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body."""
        if self._state == _DONE:
            return  # the epilogue is ignored
        self._buffer += data
        while self._step():
            pass

    def close(self) -> None:
        """The body ended. Raises MultipartError if the closing delimiter was not seen."""
        if self._state != _DONE:
            raise MultipartError("the multipart body ends before its closing delimiter")

    def _step(self) -> bool:
        """Consume what the buffer allows; True if another step may make progress."""
        if self._state in (_PREAMBLE, _BODY):
            return self._scan()
        if self._state == _AFTER_DELIMITER:
            return self._after_delimiter()
        if self._state == _HEADERS:
            return self._headers()
        self._buffer = b""
        return False

    def _scan(self) -> bool:
        at = self._buffer.find(self._delimiter)
        if at < 0:
            keep = len(self._delimiter) - 1  # a delimiter may straddle two pieces
            if len(self._buffer) > keep:
                self._emit(self._buffer[:-keep])
                self._buffer = self._buffer[-keep:]
            return False
        self._emit(self._buffer[:at])
        if self._state == _BODY:
            self._sink.end()
        self._buffer = self._buffer[at + len(self._delimiter):]
        self._state = _AFTER_DELIMITER
        return True

    def _emit(self, data: bytes) -> None:
        if self._state != _BODY or not data:
            return  # the preamble is ignored
        self._part_size += len(data)
        if self._part_size > self._max_part:
            raise BodyTooLarge(f"part {self.parts - 1} of the upload is over the limit of "
                               f"{self._max_part} bytes a file")
        self._sink.data(data)

    def _after_delimiter(self) -> bool:
        line_end = self._buffer.find(b"\r\n")
        if self._buffer.startswith(b"--"):
            self._state, self._buffer = _DONE, b""
            if self.parts == 0:
                raise MultipartError("the multipart body holds no part")
            return False
        if line_end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise MultipartError("a multipart delimiter line is too long")
            return False
        if self._buffer[:line_end].strip(b" \t"):  # only transport padding may follow
            raise MultipartError("a multipart delimiter is followed by other text")
        self._buffer = self._buffer[line_end + 2:]
        self._state = _HEADERS
        return True

    def _headers(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if self._buffer.startswith(b"\r\n"):  # a part without header lines
            end, skip = 0, 2
        else:
            skip = 4
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise MultipartError(f"a part's headers are over {MAX_HEADER_BYTES} bytes")
            return False
        if end > MAX_HEADER_BYTES:
            raise MultipartError(f"a part's headers are over {MAX_HEADER_BYTES} bytes")
        if self.parts >= self._max_parts:
            raise BodyTooLarge(f"the upload has more than {self._max_parts} parts (files)")
        self._buffer = self._buffer[end + skip:]
        self._sink.start(self.parts)
        self.parts += 1
        self._part_size = 0
        self._state = _BODY
        return True


async def batched(stream: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The pieces of ``stream`` joined into pieces of at least ``size`` bytes (the last may
    be shorter), so that each hop to a worker thread carries a useful amount."""
    pending: list[bytes] = []
    held = 0
    async for chunk in stream:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)
