"""Durable files outside the databases: one way to write, rename and fsync them.

Every file radledger writes beside its databases (received and uploaded instances,
de-identified copies, bundles, exports, keys) goes through these, so "never a partial file
under the final name, and a rename that survives a crash" (RELIABILITY 8) is written once.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from radledger.errors import StorageError, StorageFull


def fsync_folder(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename or a new file in it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place(tmp: Path, final: Path, root: Path) -> None:
    """Rename the fsynced file ``tmp`` to ``final`` (folders created as needed) and make the
    rename durable, with the folders between ``final`` and ``root`` that may have been
    created just now (by this thread or another)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    folder = final.parent
    while True:
        fsync_folder(folder)
        if folder == root or root not in folder.parents:
            break
        folder = folder.parent


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: a temporary file beside it, fsync, rename, fsync the
    folder. Readers see the old file or the whole new one, never a part."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with temporary.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 holding ``text``, fsynced. Raises FileExistsError if
    it exists (a key is never overwritten), OSError if it cannot be written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    fsync_folder(path.parent)


def folder_error(action: str, folder: Path, exc: OSError, what: str = "folder"
                 ) -> StorageError:
    """The typed error for an OSError while ``action`` (e.g. "writing to") the ``what``
    ``folder``: StorageFull when the disk or quota is full."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"no space left {action} the {what} {folder}")
    return StorageError(f"{action} the {what} {folder} failed ({exc.strerror})")
