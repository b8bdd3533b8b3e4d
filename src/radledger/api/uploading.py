"""Receiving the files of a multipart upload to disk, as the body arrives.

The body is read on the event loop and handed to a worker thread a megabyte at a time,
where ``multipart.MultipartReader`` splits it and each part is written to its own temporary
file (``ledger.uploads.Upload``), hashed on the way. If anything fails (a part over its
limit, a malformed body, the client gone, a timeout) every file received so far is removed.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from radledger.api.multipart import MultipartReader, batched, boundary_of
from radledger.ledger.uploads import Upload, UploadStore

HANDOFF_BYTES = 1 << 20


class _Files:
    """A multipart sink writing each part to a new upload."""

    def __init__(self, store: UploadStore) -> None:
        self.store = store
        self.uploads: list[Upload] = []
        self.hashes: list[str] = []

    def start(self, number: int) -> None:
        self.uploads.append(self.store.receive())

    def data(self, chunk: bytes) -> None:
        self.uploads[-1].write(chunk)

    def end(self) -> None:
        self.hashes.append(self.uploads[-1].finish())

    def discard(self) -> None:
        for upload in self.uploads:
            upload.discard()


async def receive_files(request: Request, store: UploadStore, max_file: int, max_files: int
                        ) -> list[tuple[Upload, str]]:
    """Every part of a ``multipart/form-data`` body as a finished upload with its SHA-256.

    Raises MultipartError (400) for a body that is not well-formed multipart, BodyTooLarge
    (413) for a part over ``max_file`` bytes or more than ``max_files`` parts, StorageError
    if the files cannot be written."""
    files = _Files(store)
    reader = MultipartReader(boundary_of(request.headers.get("content-type")), files,
                             max_file, max_files)
    try:
        async for piece in batched(request.stream(), HANDOFF_BYTES):
            await run_in_threadpool(reader.feed, piece)
        reader.close()
    except BaseException:
        files.discard()
        raise
    return list(zip(files.uploads, files.hashes, strict=True))


def discard(received: list[tuple[Upload, str]]) -> None:
    """Remove uploads nobody took (a failure before they were described)."""
    for upload, _ in received:
        upload.discard()
