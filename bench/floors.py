"""Floors: the cryptography and hashing radledger cannot avoid, with no storage at all.

Signing floor, per entry: RFC 8785 canonical bytes of the unsigned envelope
(``radledger.core.jcs.canonicalize``), Ed25519 signature over context || bytes
(``cryptography``), the base64 ``sig`` member spliced in (it sorts between ``refs`` and
``subject``), SHA-256 leaf hash. Input parsing, validation and storage are left out.

Verify floor, per entry: SHA-256 leaf hash of the stored bytes, canonical check
(``radledger.core.jcs.loads_canonical``), the ``sig`` member cut back out to recover the signed
bytes, Ed25519 verify (``cryptography``). Tree, block and checkpoint checks are left out.

Work is split into contiguous slices, one per process; each process prepares its slice
(builds envelopes or reads entry bytes) untimed, then all start together at a barrier.
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from workload import line_value

from radledger.core import jcs
from radledger.core.entry import SIGNATURE_CONTEXT

CLAIMED_TIME = "2026-01-31T12:00:00.000000Z"
_LEAF = b"\x00"
_SIG_KEY = b'"sig":"'
_SIG_B64_LEN = 88  # base64 of 64 bytes
_TIMEOUT_S = 6 * 3600
_PREPARE_TIMEOUT_S = 900

Work = Callable[[], int]
Prepare = Callable[..., Work]


@dataclass(frozen=True)
class Timed:
    """Wall time from the common start to the last process done, and CPU time summed."""

    count: int
    wall: float
    cpu: float
    processes: int

    @property
    def rate(self) -> float:
        return self.count / self.wall


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF + data).digest()


# -- signing -------------------------------------------------------------------------------
def envelope(i: int, actor: str) -> dict[str, object]:
    """The unsigned envelope radledger builds for workload entry ``i``."""
    value = line_value(i)
    return {"v": 1, "kind": value["kind"], "actor": actor, "claimed_time": CLAIMED_TIME,
            "subject": value["subject"], "body": value["body"], "refs": []}


def signed_bytes(env: dict[str, object], sign: Callable[[bytes], bytes]) -> bytes:
    """Canonical entry bytes: one canonicalization, one signature, the sig member spliced in.

    The splice point is the top-level ``"subject":`` member, found from the right: the
    workload's subject values are hex, so nothing after it can contain that text.
    """
    unsigned = jcs.canonicalize(env)
    sig = base64.b64encode(sign(SIGNATURE_CONTEXT + unsigned))
    cut = unsigned.rindex(b'"subject":')
    return b"".join((unsigned[:cut], _SIG_KEY, sig, b'",', unsigned[cut:]))


def _sign_all(envs: list[dict[str, object]], sign: Callable[[bytes], bytes]) -> int:
    for env in envs:
        hashlib.sha256(_LEAF + signed_bytes(env, sign)).digest()
    return len(envs)


def prepare_sign(start: int, end: int, seed: bytes, actor: str) -> Work:
    """Build the envelopes of [start, end) and return the timed signing loop."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    envs = [envelope(i, actor) for i in range(start, end)]
    return partial(_sign_all, envs, key.sign)


def check_sign_splice(seed: bytes, actor: str) -> None:
    """The floor's bytes must be exactly what canonicalizing the signed envelope gives."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    for i in range(50):
        env = envelope(i, actor)
        data = signed_bytes(env, key.sign)
        env["sig"] = base64.b64encode(key.sign(SIGNATURE_CONTEXT + jcs.canonicalize(env))).decode()
        if data != jcs.canonicalize(env):
            raise AssertionError(f"signing floor splice is not canonical for entry {i}")


# -- verifying -----------------------------------------------------------------------------
def unsign(data: bytes) -> tuple[bytes, bytes]:
    """(signed bytes without the sig member, signature) of canonical entry bytes."""
    at = data.rindex(_SIG_KEY)
    end = at + len(_SIG_KEY) + _SIG_B64_LEN
    sig = base64.b64decode(data[at + len(_SIG_KEY):end])
    return data[:at] + data[end + 2:], sig  # drop the closing quote and the comma


def _verify_all(datas: list[bytes], keys: dict[str, Ed25519PublicKey]) -> int:
    for data in datas:
        hashlib.sha256(_LEAF + data).digest()
        obj = jcs.loads_canonical(data)
        message, sig = unsign(data)
        keys[obj["actor"]].verify(sig, SIGNATURE_CONTEXT + message)
    return len(datas)


def read_entries(database: Path, start: int, end: int) -> list[bytes]:
    """Entry bytes with start <= idx < end, read-only."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute(
            "SELECT data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))]
    finally:
        conn.close()


def prepare_verify(start: int, end: int, database: Path, keys: dict[str, bytes]) -> Work:
    """Read the entry bytes of [start, end) and return the timed verify loop."""
    loaded = {actor: Ed25519PublicKey.from_public_bytes(raw) for actor, raw in keys.items()}
    return partial(_verify_all, read_entries(database, start, end), loaded)


def check_unsign(database: Path) -> None:
    """The cut must give exactly the signed bytes radledger's canonicalization gives."""
    for data in read_entries(database, 0, 50):
        obj = jcs.loads_canonical(data)
        assert isinstance(obj, dict)
        del obj["sig"]
        if unsign(data)[0] != jcs.canonicalize(obj):
            raise AssertionError("verify floor: cutting the sig member is not canonical")


# -- running -------------------------------------------------------------------------------
def run_single(prepare: Prepare, count: int, *args: object) -> Timed:
    """Run the work for [0, count) in this process."""
    work = prepare(0, count, *args)
    cpu0, t0 = time.process_time(), time.perf_counter()
    done = work()
    return Timed(done, time.perf_counter() - t0, time.process_time() - cpu0, 1)


def _child(prepare: Prepare, args: Sequence[object], barrier: object,
           results: multiprocessing.Queue[tuple[int, float, float]]) -> None:
    work = prepare(*args)
    barrier.wait(_PREPARE_TIMEOUT_S)
    cpu0, t0 = time.process_time(), time.perf_counter()
    done = work()
    results.put((done, time.perf_counter() - t0, time.process_time() - cpu0))


def run_parallel(prepare: Prepare, count: int, processes: int, *args: object) -> Timed:
    """Split [0, count) into ``processes`` slices, one forked process each, started together."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    results: multiprocessing.Queue[tuple[int, float, float]] = ctx.Queue()
    bounds = [count * p // processes for p in range(processes + 1)]
    procs = [ctx.Process(target=_child, args=(prepare, (bounds[p], bounds[p + 1], *args),
                                               barrier, results))
             for p in range(processes)]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(_PREPARE_TIMEOUT_S)
        t0 = time.perf_counter()
        got = [results.get(timeout=_TIMEOUT_S) for _ in procs]
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
    return Timed(sum(g[0] for g in got), wall, sum(g[2] for g in got), processes)
