"""Finding files and fingerprinting them on every core.

``walk`` lists files under folders in a stable order; ``in_order`` runs a task over them on
forked worker processes (which die with their parent) and yields results in path order,
with a bounded number in flight, so memory stays flat however many files there are.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from radledger.dicom.fingerprint import read_file
from radledger.dicom.instance import Instance, read_instance
from radledger.errors import InputError
from radledger.ledger.workers import worker_pool

_TASK = 8  # files per worker task: amortises inter-process overhead
_CHUNK = 1 << 20

# path, instance, error message, and the file's SHA-256 when a worker found it registered
# already and so did not parse it
Result = tuple[str, Instance | None, str | None, str | None]
Known = Callable[[str], bool]  # is a file with this SHA-256 registered already?
Hashed = tuple[str, str | None, str | None]  # path, file SHA-256, error message
T = TypeVar("T")

def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Every file under ``paths`` (files or folders), absolute, in a stable order, each once.

    Symbolic links are yielded as they are, so that ingest can refuse them by name rather
    than follow them out of the tree.
    """
    for given in paths:
        top = Path(os.path.abspath(given))
        if not top.is_dir() or top.is_symlink():
            yield top
            continue
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                yield Path(folder) / name


def count(paths: Iterable[Path]) -> tuple[int, int]:
    """How many files ``walk`` yields and their total size in bytes (for progress)."""
    files = total = 0
    for path in walk(paths):
        files += 1
        try:
            total += path.lstat().st_size
        except OSError:
            pass
    return files, total


_worker_key: bytes = b""
_worker_known: Known | None = None


def _refusal(path: Path) -> str | None:
    try:
        mode = path.lstat().st_mode
    except OSError as exc:
        return f"DicomError: {path}: cannot read ({exc.strerror})"
    if stat.S_ISLNK(mode):
        return f"DicomError: {path}: a symbolic link; not followed"
    if not stat.S_ISREG(mode):
        return f"DicomError: {path}: not a regular file"
    return None


def _init_worker(project_key: bytes, known: Callable[[], Known] | None) -> None:
    global _worker_key, _worker_known  # noqa: PLW0603 - per-process state of a pool worker
    _worker_key = project_key
    _worker_known = known() if known is not None else None


def describe(path: Path, project_key: bytes, known: Known | None = None) -> Result:
    """Fingerprint one file; a refusal is returned as ``"ErrorClass: message"``. A file whose
    bytes are ``known`` is hashed but not parsed: only its SHA-256 is returned."""
    refusal = _refusal(path)
    if refusal is not None:
        return str(path), None, refusal, None
    try:
        read = read_file(path)
        if known is not None and known(read.file_sha256):
            return str(path), None, None, read.file_sha256
        return str(path), read_instance(path, project_key, read), None, None
    except InputError as exc:
        return str(path), None, f"{type(exc).__name__}: {exc}", None


def describe_task(paths: list[Path]) -> list[Result]:
    """Worker task: ``describe`` each path with the pool's project key and known files."""
    return [describe(path, _worker_key, _worker_known) for path in paths]


def file_sha256(path: Path) -> Hashed:
    """The SHA-256 of a regular file's bytes; a refusal as ``"ErrorClass: message"``."""
    refusal = _refusal(path)
    if refusal is not None:
        return str(path), None, refusal
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        return str(path), None, f"DicomError: {path}: cannot read ({exc.strerror})"
    return str(path), digest.hexdigest(), None


def hash_task(paths: list[Path]) -> list[Hashed]:
    """Worker task: ``file_sha256`` of each path."""
    return [file_sha256(path) for path in paths]


def _chunks(paths: Iterator[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def in_order(task: Callable[[list[Path]], list[T]], paths: Iterator[Path], project_key: bytes,
             workers: int, known: Callable[[], Known] | None = None) -> Iterator[T]:
    """``task`` over ``paths`` in chunks, on ``workers`` forked processes, yielding results
    in path order. Each process holds ``project_key`` and, if given, the ``known`` check it
    builds (with its own database connection: none is shared across a fork).

    At most a few chunks per worker are in flight, so memory stays flat however many files.
    """
    if workers <= 1:
        _init_worker(project_key, known)
        for chunk in _chunks(paths, _TASK):
            yield from task(chunk)
        return
    pool: ProcessPoolExecutor = worker_pool(workers, _init_worker, (project_key, known))
    try:
        pending: deque[Future[list[T]]] = deque()
        for chunk in _chunks(paths, _TASK):
            pending.append(pool.submit(task, chunk))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
