"""RFC 6962 / RFC 9162 Merkle math against the published test data and a literal RFC oracle.

The oracle (``ref_mth``, ``ref_path``, ``ref_proof``) is RFC 6962 section 2.1 transcribed as
written: recursive, slow, and sharing no code with radledger. ``tests/data/merkle/generate.py``
uses it to write the corruption vectors walked by ``test_corruption_vector``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from radledger.core import merkle
from radledger.core.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_inclusion_proof,
    root_from_nodes,
    verify_consistency,
    verify_inclusion,
)
from radledger.errors import ProofError, ProofShapeError, RootMismatch

DATA_DIR = Path(__file__).parent / "data" / "merkle"
PUBLISHED = json.loads((DATA_DIR / "rfc6962-vectors.json").read_text())
ERRORS: dict[str, type[ProofError]] = {
    "RootMismatch": RootMismatch,
    "ProofShapeError": ProofShapeError,
}

# ---------------------------------------------------------------------------------------------
# The oracle: RFC 6962 section 2.1, literally.


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]): the Merkle Tree Hash of the inputs ``d`` (entries, not leaf hashes)."""
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _largest_power_of_two_below(n)
    return _sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of input ``m``."""
    n = len(d)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true): the consistency proof from size ``m``."""
    return _ref_subproof(m, d, True)


def _ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*_ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# ---------------------------------------------------------------------------------------------
# A dict-backed store of perfect subtrees, built without radledger.

MAX_SIZE = 300
DATA = tuple(i.to_bytes(2, "big") for i in range(MAX_SIZE))
PUBLISHED_DATA = tuple(bytes.fromhex(x) for x in PUBLISHED["leaves"])
PUBLISHED_ROOTS = [bytes.fromhex(x) for x in PUBLISHED["roots"]]

Nodes = dict[tuple[int, int], bytes]


def perfect_nodes(data: Sequence[bytes]) -> Nodes:
    """Every perfect subtree ``(level, index) -> hash`` over ``data``."""
    level_hashes = [_sha256(b"\x00" + x) for x in data]
    nodes: Nodes = {}
    level = 0
    while level_hashes:
        nodes.update({(level, i): h for i, h in enumerate(level_hashes)})
        pairs = zip(level_hashes[0::2], level_hashes[1::2], strict=False)
        level_hashes = [_sha256(b"\x01" + left + right) for left, right in pairs]
        level += 1
    return nodes


NODES = perfect_nodes(DATA)
PUBLISHED_NODES = perfect_nodes(PUBLISHED_DATA)


class NodeStore:
    """``get_node`` over the first ``tree_size`` leaves; counts reads, refuses ragged nodes."""

    def __init__(self, nodes: Nodes, tree_size: int) -> None:
        self.nodes = nodes
        self.tree_size = tree_size
        self.reads = 0

    def __call__(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.tree_size, f"({level}, {index}) is not perfect"
        self.reads += 1
        return self.nodes[(level, index)]


@cache
def ref_root(n: int) -> bytes:
    return ref_mth(DATA[:n])


def leaf_of(i: int) -> bytes:
    return NODES[(0, i)]


def expect(error: type[ProofError], verifier: Callable[..., None], *args: object) -> ProofError:
    """Call ``verifier(*args)`` and require exactly ``error`` (not a subclass or sibling)."""
    with pytest.raises(ProofError) as info:
        verifier(*args)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    return info.value


# ---------------------------------------------------------------------------------------------
# The published RFC 6962 test data.


def test_public_api_is_pinned() -> None:
    assert set(merkle.__all__) == {
        "EMPTY_ROOT", "HASH_SIZE", "MAX_PROOF_LENGTH", "MAX_TREE_SIZE", "CompactRange",
        "NewNode", "NodeReader", "consistency_proof", "inclusion_proof", "leaf_hash",
        "node_hash", "root", "root_from_inclusion_proof", "root_from_nodes",
        "verify_consistency", "verify_inclusion",
    }  # fmt: skip


def test_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == _sha256(b"\x00")
    assert node_hash(b"a" * 32, b"b" * 32) == _sha256(b"\x01" + b"a" * 32 + b"b" * 32)
    assert EMPTY_ROOT.hex() == PUBLISHED["roots"][0]


@pytest.mark.parametrize("size", range(9))
def test_published_roots(size: int) -> None:
    want = PUBLISHED_ROOTS[size]
    assert ref_mth(PUBLISHED_DATA[:size]) == want
    assert root([leaf_hash(x) for x in PUBLISHED_DATA[:size]]) == want
    assert root_from_nodes(size, NodeStore(PUBLISHED_NODES, size)) == want
    compact = CompactRange.empty()
    for x in PUBLISHED_DATA[:size]:
        compact.append(leaf_hash(x))
    assert compact.root() == want


@pytest.mark.parametrize(
    "case", PUBLISHED["inclusion"], ids=lambda c: f"{c['index']}-of-{c['tree_size']}"
)
def test_published_inclusion_proofs(case: dict[str, Any]) -> None:
    index, size = case["index"], case["tree_size"]
    want = [bytes.fromhex(h) for h in case["proof"]]
    assert ref_path(index, PUBLISHED_DATA[:size]) == want
    assert inclusion_proof(index, size, NodeStore(PUBLISHED_NODES, size)) == want
    leaf = leaf_hash(PUBLISHED_DATA[index])
    assert root_from_inclusion_proof(leaf, index, size, want) == PUBLISHED_ROOTS[size]
    verify_inclusion(leaf, index, size, want, PUBLISHED_ROOTS[size])


@pytest.mark.parametrize(
    "case", PUBLISHED["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}"
)
def test_published_consistency_proofs(case: dict[str, Any]) -> None:
    size1, size2 = case["size1"], case["size2"]
    want = [bytes.fromhex(h) for h in case["proof"]]
    assert ref_proof(size1, PUBLISHED_DATA[:size2]) == want
    assert consistency_proof(size1, size2, NodeStore(PUBLISHED_NODES, size2)) == want
    verify_consistency(size1, size2, want, PUBLISHED_ROOTS[size1], PUBLISHED_ROOTS[size2])


# ---------------------------------------------------------------------------------------------
# Against the oracle: Hypothesis over sizes up to 300, exhaustively up to 70.

sizes = st.integers(min_value=0, max_value=MAX_SIZE)
index_and_size = st.integers(1, MAX_SIZE).flatmap(
    lambda n: st.tuples(st.integers(0, n - 1), st.just(n))
)
size_pairs = st.integers(1, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))


@settings(max_examples=150, deadline=None)
@given(sizes)
def test_root_matches_reference(size: int) -> None:
    want = ref_root(size)
    assert root([leaf_of(i) for i in range(size)]) == want
    store = NodeStore(NODES, size)
    assert root_from_nodes(size, store) == want
    assert store.reads == size.bit_count()
    assert CompactRange.from_nodes(size, NodeStore(NODES, size)).root() == want


@settings(max_examples=150, deadline=None)
@given(index_and_size)
def test_inclusion_proof_matches_reference(case: tuple[int, int]) -> None:
    index, size = case
    store = NodeStore(NODES, size)
    proof = inclusion_proof(index, size, store)
    assert proof == ref_path(index, DATA[:size])
    assert store.reads <= 2 * size.bit_length()
    verify_inclusion(leaf_of(index), index, size, proof, ref_root(size))


@settings(max_examples=150, deadline=None)
@given(size_pairs)
def test_consistency_proof_matches_reference(case: tuple[int, int]) -> None:
    size1, size2 = case
    store = NodeStore(NODES, size2)
    proof = consistency_proof(size1, size2, store)
    assert proof == ref_proof(size1, DATA[:size2])
    assert store.reads <= 2 * size2.bit_length() + 1
    verify_consistency(size1, size2, proof, ref_root(size1), ref_root(size2))


def _inclusion_error(index: int, size: int, proof_length: int) -> type[ProofError]:
    """The error a proof of ``proof_length`` hashes must get when claimed for (index, size)."""
    if not 0 <= index < size or len(ref_path(index, DATA[:size])) != proof_length:
        return ProofShapeError
    return RootMismatch


def _consistency_error(size1: int, size2: int, proof_length: int) -> type[ProofError]:
    if not 0 < size1 <= size2 or len(ref_proof(size1, DATA[:size2])) != proof_length:
        return ProofShapeError
    return RootMismatch


@pytest.mark.parametrize("size", range(71))
def test_every_inclusion_proof_up_to_70(size: int) -> None:
    # One past the last leaf (index 0 of the empty tree included) is not in the tree.
    expect(ProofShapeError, verify_inclusion, leaf_of(0), size, size, [], ref_root(size))
    for index in range(size):
        proof = inclusion_proof(index, size, NodeStore(NODES, size))
        assert proof == ref_path(index, DATA[:size])
        verify_inclusion(leaf_of(index), index, size, proof, ref_root(size))
        # The same proof reused for a neighbouring tree, with that tree's root.
        for other in (size - 1, size + 1):
            want = _inclusion_error(index, other, len(proof))
            expect(want, verify_inclusion, leaf_of(index), index, other, proof, ref_root(other))
        # The same proof claimed for every other leaf of this tree.
        for other in range(max(0, index - 2), min(size, index + 3)):
            if other != index:
                want = _inclusion_error(other, size, len(proof))
                expect(
                    want,
                    verify_inclusion,
                    leaf_of(other),
                    other,
                    size,
                    proof,
                    ref_root(size),
                )


@pytest.mark.parametrize("size2", range(71))
def test_every_consistency_proof_up_to_70(size2: int) -> None:
    expect(ProofShapeError, verify_consistency, 0, size2, [], EMPTY_ROOT, ref_root(size2))
    for size1 in range(1, size2 + 1):
        proof = consistency_proof(size1, size2, NodeStore(NODES, size2))
        assert proof == ref_proof(size1, DATA[:size2])
        verify_consistency(size1, size2, proof, ref_root(size1), ref_root(size2))
        for other in (size2 - 1, size2 + 1):
            want = _consistency_error(size1, other, len(proof))
            expect(
                want,
                verify_consistency,
                size1,
                other,
                proof,
                ref_root(size1),
                ref_root(other),
            )


def test_compact_range_emits_exactly_the_perfect_nodes() -> None:
    compact = CompactRange.empty()
    emitted: Nodes = {}
    for i in range(MAX_SIZE):
        new = compact.append(leaf_of(i))
        assert new[0] == (0, i, leaf_of(i))
        for level, index, value in new:
            assert (level, index) not in emitted
            emitted[(level, index)] = value
        assert compact.size == i + 1
        assert compact.root() == ref_root(i + 1)
    assert emitted == NODES


@settings(max_examples=100, deadline=None)
@given(sizes, st.integers(0, 40))
def test_compact_range_resumes_from_stored_nodes(size: int, more: int) -> None:
    more = min(more, MAX_SIZE - size)
    compact = CompactRange.from_nodes(size, NodeStore(NODES, size))
    assert compact.size == size
    assert compact.root() == ref_root(size)
    for i in range(size, size + more):
        for level, index, value in compact.append(leaf_of(i)):
            assert NODES[(level, index)] == value
            assert (index + 1) << level == i + 1, "only nodes ending at the new leaf are new"
    assert compact.root() == ref_root(size + more)


# ---------------------------------------------------------------------------------------------
# Verifier edge cases, each with its exact error.

ROOT_8 = PUBLISHED_ROOTS[8]
PROOF_5_OF_8 = [bytes.fromhex(h) for h in PUBLISHED["inclusion"][2]["proof"]]
LEAF_5 = leaf_hash(PUBLISHED_DATA[5])


def test_index_0_of_size_1_has_the_empty_proof() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)
    assert inclusion_proof(0, 1, NodeStore({(0, 0): leaf}, 1)) == []
    expect(RootMismatch, verify_inclusion, leaf, 0, 1, [], EMPTY_ROOT)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (8, 8), (9, 8), (-1, 8)])
def test_index_outside_the_tree_is_a_shape_error(index: int, size: int) -> None:
    error = expect(ProofShapeError, verify_inclusion, LEAF_5, index, size, [], ROOT_8)
    assert error.index == index
    with pytest.raises(ProofShapeError):
        inclusion_proof(index, size, NodeStore(NODES, max(size, 0)))


def test_proof_one_hash_too_long_or_short_reports_the_lengths() -> None:
    for proof in (PROOF_5_OF_8[:-1], [*PROOF_5_OF_8, ROOT_8]):
        error = expect(ProofShapeError, verify_inclusion, LEAF_5, 5, 8, proof, ROOT_8)
        assert (error.expected, error.computed, error.index) == (3, len(proof), 5)


def test_root_mismatch_carries_both_roots() -> None:
    wrong = _sha256(b"another root")
    error = expect(RootMismatch, verify_inclusion, LEAF_5, 5, 8, PROOF_5_OF_8, wrong)
    assert (error.expected, error.computed, error.index) == (wrong, ROOT_8, 5)
    proof = [bytes.fromhex(h) for h in PUBLISHED["consistency"][2]["proof"]]
    error = expect(RootMismatch, verify_consistency, 6, 8, proof, PUBLISHED_ROOTS[6], wrong)
    assert (error.expected, error.computed) == (wrong, ROOT_8)


def test_proof_reused_for_another_tree_size_is_rejected() -> None:
    # Same length for size 7, so the proof is well-formed and leads to another root.
    expect(RootMismatch, verify_inclusion, LEAF_5, 5, 7, PROOF_5_OF_8, PUBLISHED_ROOTS[7])
    expect(ProofShapeError, verify_inclusion, LEAF_5, 5, 6, PROOF_5_OF_8, PUBLISHED_ROOTS[6])


def test_consistency_from_size_0_is_rejected() -> None:
    for size2, proof in ((0, []), (5, []), (5, [PUBLISHED_ROOTS[5]])):
        expect(
            ProofShapeError,
            verify_consistency,
            0,
            size2,
            proof,
            EMPTY_ROOT,
            PUBLISHED_ROOTS[size2],
        )
    with pytest.raises(ProofShapeError):
        consistency_proof(0, 5, NodeStore(PUBLISHED_NODES, 5))


def test_consistency_shapes() -> None:
    r3, r5 = PUBLISHED_ROOTS[3], PUBLISHED_ROOTS[5]
    verify_consistency(5, 5, [], r5, r5)
    assert consistency_proof(5, 5, NodeStore(PUBLISHED_NODES, 5)) == []
    expect(RootMismatch, verify_consistency, 5, 5, [], r3, r5)
    error = expect(ProofShapeError, verify_consistency, 5, 5, [r5], r5, r5)
    assert (error.expected, error.computed) == (0, 1)
    expect(ProofShapeError, verify_consistency, 5, 3, [], r5, r3)
    with pytest.raises(ProofShapeError):
        consistency_proof(5, 3, NodeStore(PUBLISHED_NODES, 5))
    error = expect(ProofShapeError, verify_consistency, 3, 5, [], r3, r5)
    assert (error.expected, error.computed) == (len(ref_proof(3, DATA[:5])), 0)


@pytest.mark.parametrize("where", ["leaf", "proof", "root"])
def test_hashes_must_be_32_bytes(where: str) -> None:
    leaf = LEAF_5[:31] if where == "leaf" else LEAF_5
    proof = [PROOF_5_OF_8[0] + b"\x00", *PROOF_5_OF_8[1:]] if where == "proof" else PROOF_5_OF_8
    root_ = b"" if where == "root" else ROOT_8
    error = expect(ProofShapeError, verify_inclusion, leaf, 5, 8, proof, root_)
    assert error.expected == 32


def test_sizes_beyond_uint64_are_rejected() -> None:
    expect(ProofShapeError, verify_inclusion, LEAF_5, 5, 2**64, PROOF_5_OF_8, ROOT_8)
    expect(ProofShapeError, verify_consistency, 1, 2**64, [], ROOT_8, ROOT_8)


class UntouchableProof(list[bytes]):
    """A proof whose hashes must not be read: only its length may be asked."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the verifier read a proof it should have rejected by length")

    def __getitem__(self, item):  # type: ignore[no-untyped-def]
        raise AssertionError("the verifier read a proof it should have rejected by length")


def test_huge_proof_is_rejected_before_hashing() -> None:
    proof = UntouchableProof([ROOT_8] * 10_000)
    error = expect(ProofShapeError, verify_inclusion, LEAF_5, 5, 8, proof, ROOT_8)
    assert error.computed == 10_000
    expect(ProofShapeError, verify_consistency, 6, 8, proof, ROOT_8, ROOT_8)
    wrong_length = UntouchableProof([ROOT_8] * 4)
    expect(ProofShapeError, verify_inclusion, LEAF_5, 5, 8, wrong_length, ROOT_8)


def _flips(value: bytes) -> list[bytes]:
    """``value`` with each one of its bits flipped in turn."""
    return [
        value[:i] + bytes([value[i] ^ (1 << bit)]) + value[i + 1 :]
        for i in range(len(value))
        for bit in range(8)
    ]


@pytest.mark.parametrize(
    ("index", "size"), [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5), (16, 17), (32, 65), (40, 63)]
)
def test_every_bit_flip_in_an_inclusion_proof_is_rejected(index: int, size: int) -> None:
    proof, good_root = ref_path(index, DATA[:size]), ref_root(size)
    for position, value in enumerate(proof):
        for flipped in _flips(value):
            bad = [*proof[:position], flipped, *proof[position + 1 :]]
            expect(
                RootMismatch,
                verify_inclusion,
                leaf_of(index),
                index,
                size,
                bad,
                good_root,
            )
    for flipped in _flips(good_root):
        expect(RootMismatch, verify_inclusion, leaf_of(index), index, size, proof, flipped)


@pytest.mark.parametrize(
    ("size1", "size2"), [(1, 8), (6, 8), (2, 5), (6, 7), (4, 17), (31, 65), (32, 63)]
)
def test_every_bit_flip_in_a_consistency_proof_is_rejected(size1: int, size2: int) -> None:
    proof, root1, root2 = ref_proof(size1, DATA[:size2]), ref_root(size1), ref_root(size2)
    for position, value in enumerate(proof):
        for flipped in _flips(value):
            bad = [*proof[:position], flipped, *proof[position + 1 :]]
            expect(RootMismatch, verify_consistency, size1, size2, bad, root1, root2)
    for flipped in _flips(root1):
        expect(RootMismatch, verify_consistency, size1, size2, proof, flipped, root2)
    for flipped in _flips(root2):
        expect(RootMismatch, verify_consistency, size1, size2, proof, root1, flipped)


def test_writer_misuse_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        root_from_nodes(-1, NodeStore(NODES, 0))
    with pytest.raises(ValueError, match="negative"):
        CompactRange.from_nodes(-1, NodeStore(NODES, 0))
    with pytest.raises(ValueError, match="bytes"):
        CompactRange.empty().append(b"short")


# ---------------------------------------------------------------------------------------------
# Corruption vectors: data files named after the corruption they hold.

VECTOR_FILES = sorted(DATA_DIR.glob("*/*@*.json"))


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corruption_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    verifier: Callable[..., None]
    if path.parent.name == "inclusion":
        verifier = verify_inclusion
        fields = ("leaf_hash", "index", "tree_size", "proof", "root")
    else:
        verifier = verify_consistency
        fields = ("size1", "size2", "proof", "root1", "root2")
    args: list[Any] = []
    for value in (case[f] for f in fields):
        if isinstance(value, str):
            args.append(bytes.fromhex(value))
        elif isinstance(value, list):
            args.append([bytes.fromhex(h) for h in value])
        else:
            args.append(value)
    if case["want_error"] is None:
        verifier(*args)
    else:
        expect(ERRORS[case["want_error"]], verifier, *args)


def test_corruption_vectors_are_current() -> None:
    spec = importlib.util.spec_from_file_location("merkle_generate", DATA_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    want = generate.build(ref_mth, ref_path, ref_proof)
    on_disk = {f"{p.parent.name}/{p.name}": p.read_text() for p in DATA_DIR.glob("*/*.json")}
    assert on_disk.keys() == want.keys(), "run tests/data/merkle/generate.py"
    assert on_disk == want, "run tests/data/merkle/generate.py"
    assert len(VECTOR_FILES) == len(want) > 100
