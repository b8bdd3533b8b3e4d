"""Write the Merkle corruption vectors under ``inclusion/`` and ``consistency/``.

Each vector starts from a proof of the published RFC 6962 test data (``rfc6962-vectors.json``)
and holds one corruption, named in the file: ``<case>@<corruption>.json``, e.g.
``inclusion/leaf-5-of-8@bit-flip-proof-0.json`` or ``consistency/size-6-to-8@truncated-proof.json``.
``want_error`` is the exact error the verifier must raise, or null when the proof must verify.

It is decided from the slow RFC reference (the oracle in ``tests/test_merkle.py``) alone, never
from radledger: a claimed shape that is impossible, or a proof whose length differs from the
reference proof for that shape, is a ``ProofShapeError``; any other corruption is a
``RootMismatch``. A proof reused for another tree size is checked against the real root of
that size: a root does not commit to its size, so the proof of leaf 1 of 5 does verify as
leaf 1 of a 6-leaf tree whose root is the 5-leaf root, and must.

Run from the repository root:  .venv/bin/python tests/data/merkle/generate.py
``tests/test_merkle.py`` fails when the files on disk differ from what this writes.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KINDS = ("inclusion", "consistency")

MTH = Callable[[Sequence[bytes]], bytes]
ProofFn = Callable[[int, Sequence[bytes]], list[bytes]]
Vector = dict[str, Any]

SHAPE = "ProofShapeError"
ROOT = "RootMismatch"


def build(mth: MTH, path: ProofFn, proof: ProofFn) -> dict[str, str]:
    """Every vector file as ``{relative path: JSON text}``, given the RFC reference.

    ``mth``, ``path`` and ``proof`` are RFC 6962 section 2.1 MTH, PATH and PROOF.
    Raises ``ValueError`` if the reference disagrees with the published data.
    """
    published = json.loads((HERE / "rfc6962-vectors.json").read_text())
    data = [bytes.fromhex(leaf) for leaf in published["leaves"]]
    roots = [bytes.fromhex(r) for r in published["roots"]]
    for size, want in enumerate(roots):
        if mth(data[:size]) != want:
            raise ValueError(f"the reference disagrees with the published root of size {size}")

    files: dict[str, str] = {}
    for case in published["inclusion"]:
        index, tree_size = case["index"], case["tree_size"]
        hashes = [bytes.fromhex(h) for h in case["proof"]]
        if path(index, data[:tree_size]) != hashes:
            raise ValueError(f"the reference disagrees with the published path {case}")
        name = f"inclusion/leaf-{index}-of-{tree_size}"
        leaf = mth(data[index : index + 1])
        for corruption, vector in _inclusion_vectors(
            path, leaf=leaf, index=index, tree_size=tree_size, hashes=hashes, roots=roots
        ):
            files[f"{name}@{corruption}.json"] = _dump(vector)
    for case in published["consistency"]:
        size1, size2 = case["size1"], case["size2"]
        hashes = [bytes.fromhex(h) for h in case["proof"]]
        if proof(size1, data[:size2]) != hashes:
            raise ValueError(f"the reference disagrees with the published proof {case}")
        name = f"consistency/size-{size1}-to-{size2}"
        for corruption, vector in _consistency_vectors(proof, size1, size2, hashes, roots):
            files[f"{name}@{corruption}.json"] = _dump(vector)
    return files


def _inclusion_vectors(
    path: ProofFn,
    *,
    leaf: bytes,
    index: int,
    tree_size: int,
    hashes: list[bytes],
    roots: list[bytes],
) -> Iterator[tuple[str, Vector]]:
    root = roots[tree_size]

    def vector(description: str, want: str | None, **changes: Any) -> Vector:
        fields: dict[str, Any] = {
            "leaf_hash": leaf,
            "index": index,
            "tree_size": tree_size,
            "proof": hashes,
            "root": root,
        }
        fields.update(changes)
        return _vector(f"leaf {index} of the {tree_size}-leaf tree: {description}", want, fields)

    def shape_want(new_index: int, new_size: int) -> str:
        if not 0 <= new_index < new_size:
            return SHAPE
        expected = len(path(new_index, [b""] * new_size))
        return SHAPE if expected != len(hashes) else ROOT

    yield "happy-path", vector("the published proof", None)
    for i in range(len(hashes)):
        flipped = [*hashes[:i], _flip(hashes[i]), *hashes[i + 1 :]]
        yield (
            f"bit-flip-proof-{i}",
            vector(f"proof[{i}] bit 3 of byte 0 flipped", ROOT, proof=flipped),
        )
    yield (
        "bit-flip-leaf-hash",
        vector("leaf hash bit 3 of byte 0 flipped", ROOT, leaf_hash=_flip(leaf)),
    )
    yield "bit-flip-root", vector("root bit 3 of byte 0 flipped", ROOT, root=_flip(root))
    yield "empty-tree-root", vector("root of the empty tree", ROOT, root=roots[0])
    yield "extra-hash", vector("the root appended", SHAPE, proof=[*hashes, root])
    yield "preceding-hash", vector("the root prepended", SHAPE, proof=[root, *hashes])
    if hashes:
        yield "missing-hash", vector("last hash removed", SHAPE, proof=hashes[:-1])
        short = [hashes[0][:-1], *hashes[1:]]
        yield "short-hash", vector("proof[0] one byte short", SHAPE, proof=short)
    if len(hashes) > 1:
        swapped = [hashes[1], hashes[0], *hashes[2:]]
        yield "swapped-hashes", vector("proof[0] and proof[1] swapped", ROOT, proof=swapped)
    for label, new_index in (("plus-1", index + 1), ("minus-1", index - 1), ("xor-2", index ^ 2)):
        want = shape_want(new_index, tree_size)
        yield (
            f"wrong-index-{label}",
            vector(f"claimed for index {new_index}", want, index=new_index),
        )
    for label, new_size in _other_sizes(tree_size, len(roots)):
        want = shape_want(index, new_size)
        description = f"reused for tree size {new_size}, with its root"
        yield (
            f"wrong-tree-size-{label}",
            vector(description, want, tree_size=new_size, root=roots[new_size]),
        )


def _consistency_vectors(
    proof: ProofFn, size1: int, size2: int, hashes: list[bytes], roots: list[bytes]
) -> Iterator[tuple[str, Vector]]:
    root1, root2 = roots[size1], roots[size2]

    def vector(description: str, want: str | None, **changes: Any) -> Vector:
        fields: dict[str, Any] = {
            "size1": size1,
            "size2": size2,
            "proof": hashes,
            "root1": root1,
            "root2": root2,
        }
        fields.update(changes)
        return _vector(f"from size {size1} to size {size2}: {description}", want, fields)

    def shape_want(new1: int, new2: int) -> str:
        if not 0 < new1 <= new2:
            return SHAPE
        expected = len(proof(new1, [b""] * new2))
        return SHAPE if expected != len(hashes) else ROOT

    yield "happy-path", vector("the published proof", None)
    for i in range(len(hashes)):
        flipped = [*hashes[:i], _flip(hashes[i]), *hashes[i + 1 :]]
        yield (
            f"bit-flip-proof-{i}",
            vector(f"proof[{i}] bit 3 of byte 0 flipped", ROOT, proof=flipped),
        )
    yield "bit-flip-root1", vector("root1 bit 3 of byte 0 flipped", ROOT, root1=_flip(root1))
    yield "bit-flip-root2", vector("root2 bit 3 of byte 0 flipped", ROOT, root2=_flip(root2))
    yield "extra-hash", vector("root2 appended", SHAPE, proof=[*hashes, root2])
    yield "preceding-hash", vector("root1 prepended", SHAPE, proof=[root1, *hashes])
    yield "from-size-0", vector("claimed from the empty tree", SHAPE, size1=0, root1=roots[0])
    for label, new2 in _other_sizes(size2, len(roots)):
        want = shape_want(size1, new2)
        description = f"reused for size2 {new2}, with its root"
        yield f"wrong-size2-{label}", vector(description, want, size2=new2, root2=roots[new2])
    if size1 == size2:
        return
    yield "truncated-proof", vector("last hash removed", SHAPE, proof=hashes[:-1])
    yield "empty-proof", vector("no hashes", SHAPE, proof=[])
    yield "swapped-roots", vector("root1 and root2 swapped", ROOT, root1=root2, root2=root1)
    yield "swapped-sizes", vector("size1 and size2 swapped", SHAPE, size1=size2, size2=size1)
    for label, new1 in _other_sizes(size1, len(roots)):
        want = shape_want(new1, size2)
        description = f"claimed from size {new1}, with its root"
        yield f"wrong-size1-{label}", vector(description, want, size1=new1, root1=roots[new1])


def _other_sizes(size: int, known: int) -> list[tuple[str, int]]:
    """Neighbouring sizes whose real root is published (sizes 0 to known - 1)."""
    others: dict[int, str] = {}
    for label, other in (("minus-1", size - 1), ("plus-1", size + 1), ("halved", size // 2)):
        if 0 <= other < known and other != size:
            others.setdefault(other, label)
    return [(label, other) for other, label in others.items()]


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x08]) + value[1:]


def _vector(description: str, want: str | None, fields: dict[str, Any]) -> Vector:
    out: Vector = {"description": description}
    for key, value in fields.items():
        if isinstance(value, bytes):
            out[key] = value.hex()
        elif isinstance(value, list):
            out[key] = [h.hex() for h in value]
        else:
            out[key] = value
    out["want_error"] = want
    return out


def _dump(vector: Vector) -> str:
    return json.dumps(vector, indent=2) + "\n"


def main() -> None:
    """Replace every vector file with a freshly generated one."""
    sys.path.insert(0, str(HERE.parent.parent))
    oracle = importlib.import_module("test_merkle")
    files = build(oracle.ref_mth, oracle.ref_path, oracle.ref_proof)
    for kind in KINDS:
        for stale in (HERE / kind).glob("*.json"):
            stale.unlink()
        (HERE / kind).mkdir(exist_ok=True)
    for relative, text in sorted(files.items()):
        (HERE / relative).write_text(text)
    print(f"wrote {len(files)} vectors under {HERE}")


if __name__ == "__main__":
    main()
