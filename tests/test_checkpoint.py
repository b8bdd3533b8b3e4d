"""C2SP checkpoints with the radledger block extension: round trips, refusals, mutations."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radledger.core.checkpoint import (
    MAX_INT63,
    BlockExtension,
    Checkpoint,
    block_extension,
    open_checkpoint,
    parse_block_extension,
    parse_checkpoint,
    sign_checkpoint,
)
from radledger.core.ed25519 import SigningKey
from radledger.core.note import Signer, parse_note, sign_note
from radledger.errors import NoteError, RadledgerError, SignatureError

ORIGIN = "radledger.example/site-a"
LEDGER = Signer(ORIGIN, SigningKey.from_seed(bytes(range(32))))
WITNESS = Signer("witness.example/site-b", SigningKey.from_seed(bytes(range(1, 33))))
ROOT = bytes(range(100, 132))
BLOCK_HASH = bytes(range(200, 232))
NOW = 1_750_000_000


def make_checkpoint(size: int = 42, time: int = NOW, extra: tuple[str, ...] = ()) -> Checkpoint:
    return Checkpoint(ORIGIN, size, ROOT, (block_extension(7, BLOCK_HASH, time), *extra))


# --- format -----------------------------------------------------------------------------------
def test_spec_example_checkpoint_parses() -> None:
    note = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Z"
        "hcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    )
    checkpoint = parse_checkpoint(parse_note(note).text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.tree_size == 20852163
    assert base64.b64encode(checkpoint.root_hash) == b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert checkpoint.extensions == ()
    assert checkpoint.block is None


def test_marshal_layout() -> None:
    checkpoint = make_checkpoint()
    assert checkpoint.marshal() == (
        f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"
        f"radledger-block 7 {base64.b64encode(BLOCK_HASH).decode()} {NOW}\n"
    )
    assert checkpoint.block == BlockExtension(7, BLOCK_HASH, NOW)


def test_empty_tree_is_size_zero() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, ROOT)
    assert checkpoint.marshal().split("\n")[1] == "0"
    assert parse_checkpoint(checkpoint.marshal()) == checkpoint


LINE = st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1)


@given(
    origin=LINE,
    size=st.integers(0, MAX_INT63),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(LINE, max_size=3),
)
def test_marshal_parse_round_trip(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(checkpoint.marshal()) == checkpoint


@given(height=st.integers(0, MAX_INT63), block_hash=st.binary(min_size=32, max_size=32),
       time=st.integers(0, MAX_INT63))
def test_block_extension_round_trip(height: int, block_hash: bytes, time: int) -> None:
    assert parse_block_extension(block_extension(height, block_hash, time)) == (
        height, block_hash, time)


ROOT64 = base64.b64encode(ROOT).decode()
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# The same 32 bytes with a padding bit set in the last character: decodes, but not canonical.
ROOT64_PADDING_BIT = ROOT64[:-2] + ALPHABET[ALPHABET.index(ROOT64[-2]) | 1] + "="


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(f"{ORIGIN}\n42\n{ROOT64}", "missing final newline", id="no-final-newline"),
        pytest.param(f"{ORIGIN}\n42\n", "needs origin, size and root", id="two-lines"),
        pytest.param(f"\n42\n{ROOT64}\n", "origin is empty", id="empty-origin"),
        pytest.param(f"{ORIGIN}\n042\n{ROOT64}\n", "leading zeros", id="leading-zero"),
        pytest.param(f"{ORIGIN}\n+42\n{ROOT64}\n", "tree size", id="plus-sign"),
        pytest.param(f"{ORIGIN}\n-1\n{ROOT64}\n", "tree size", id="negative"),
        pytest.param(f"{ORIGIN}\n 42\n{ROOT64}\n", "tree size", id="space"),
        pytest.param(f"{ORIGIN}\n4_2\n{ROOT64}\n", "tree size", id="underscore"),
        pytest.param(f"{ORIGIN}\n\u0664\u0662\n{ROOT64}\n", "tree size", id="arabic-digits"),
        pytest.param(f"{ORIGIN}\n{2**63}\n{ROOT64}\n", "tree size", id="2^63"),
        pytest.param(f"{ORIGIN}\n{'9' * 5000}\n{ROOT64}\n", "tree size", id="huge"),
        pytest.param(f"{ORIGIN}\n\n{ROOT64}\n", "tree size", id="empty-size"),
        pytest.param(f"{ORIGIN}\n42\n{ROOT64[:-4]}\n", "32 bytes", id="short-root"),
        pytest.param(f"{ORIGIN}\n42\n{ROOT64_PADDING_BIT}\n", "non-canonical base64",
                     id="root-padding-bits"),
        pytest.param(f"{ORIGIN}\n42\n{ROOT64.rstrip('=')}\n", "bad base64", id="root-unpadded"),
        pytest.param(f"{ORIGIN}\n42\n{ROOT64}\n\next\n", "extension line is empty",
                     id="extra-blank-line"),
        pytest.param(f"{ORIGIN}\r\n42\n{ROOT64}\n", "control character", id="carriage-return"),
    ],
)
def test_malformed_checkpoint_is_refused(text: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"origin": "a\nb"}, "newline"),
        ({"origin": ""}, "origin is empty"),
        ({"tree_size": -1}, "outside"),
        ({"tree_size": 2**63}, "outside"),
        ({"root_hash": bytes(31)}, "32 bytes"),
        ({"extensions": ("",)}, "extension line is empty"),
        ({"extensions": ("a\nb",)}, "newline"),
        ({"extensions": ("a\x00b",)}, "control character"),
    ],
)
def test_unwritable_checkpoint_is_refused(kwargs: dict[str, object], reason: str) -> None:
    fields: dict[str, object] = {"origin": ORIGIN, "tree_size": 1, "root_hash": ROOT}
    fields.update(kwargs)
    with pytest.raises(NoteError, match=reason):
        Checkpoint(**fields)  # type: ignore[arg-type]


B64 = base64.b64encode(BLOCK_HASH).decode()


@pytest.mark.parametrize(
    "line",
    [
        f"radledger-block 7 {B64}",
        f"radledger-block 7 {B64} {NOW} extra",
        f"radledger-block  7 {B64} {NOW}",
        f"radledger-block 07 {B64} {NOW}",
        f"radledger-block 7 {B64} -{NOW}",
        f"radledger-block 7 {B64[:-4]} {NOW}",
        f"radledger-block 7 {B64.rstrip('=')} {NOW}",
        f"radledger-blocks 7 {B64} {NOW}",
        f"radledger-block 7 {B64} {2**63}",
    ],
)
def test_malformed_block_extension_is_refused(line: str) -> None:
    with pytest.raises(NoteError):
        parse_block_extension(line)


def test_block_extension_arguments_are_checked() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        block_extension(1, bytes(31), NOW)
    with pytest.raises(NoteError, match="block time"):
        block_extension(1, BLOCK_HASH, -1)


# --- signing and opening ----------------------------------------------------------------------
def test_sign_open_round_trip() -> None:
    checkpoint = make_checkpoint()
    note = sign_checkpoint(checkpoint, LEDGER)
    assert open_checkpoint(note, LEDGER.verifier, origin=ORIGIN) == checkpoint
    assert open_checkpoint(note.encode(), LEDGER.verifier, origin=ORIGIN, now=NOW) == checkpoint


def test_witness_cosignature_is_ignored() -> None:
    checkpoint = make_checkpoint()
    note = sign_note(checkpoint.marshal(), [LEDGER, WITNESS])
    assert open_checkpoint(note, LEDGER.verifier, origin=ORIGIN) == checkpoint


def test_origin_mismatch_is_refused() -> None:
    note = sign_checkpoint(make_checkpoint(), LEDGER)
    with pytest.raises(NoteError, match="origin mismatch: expected 'other.example/x', got "
                                        "'radledger.example/site-a'"):
        open_checkpoint(note, LEDGER.verifier, origin="other.example/x")


def test_origin_is_pinned_not_taken_from_the_signer_name() -> None:
    """A key trusted for one origin does not vouch for a checkpoint of another."""
    other = Checkpoint("evil.example/log", 1, ROOT)
    note = sign_checkpoint(other, LEDGER)
    with pytest.raises(NoteError, match="origin mismatch"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN)


def test_unknown_key_id_is_refused() -> None:
    note = sign_checkpoint(make_checkpoint(), WITNESS)
    with pytest.raises(SignatureError, match=r"unknown key ID: witness\.example/site-b\+"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN)


def test_other_key_under_the_pinned_name_is_refused() -> None:
    impostor = Signer(ORIGIN, SigningKey.from_seed(bytes(32)))
    note = sign_checkpoint(make_checkpoint(), impostor)
    with pytest.raises(SignatureError, match="unknown key ID"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN)


def test_wrong_signature_is_refused() -> None:
    note = sign_checkpoint(make_checkpoint(), LEDGER)
    tampered = note.replace("\n42\n", "\n43\n")
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(tampered, LEDGER.verifier, origin=ORIGIN)


def test_future_timestamp_is_refused() -> None:
    note = sign_checkpoint(make_checkpoint(time=NOW + 301), LEDGER)
    with pytest.raises(NoteError, match=f"checkpoint timestamp {NOW + 301} is in the future"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN, now=NOW)
    assert open_checkpoint(note, LEDGER.verifier, origin=ORIGIN, now=NOW + 1).tree_size == 42
    assert open_checkpoint(note, LEDGER.verifier, origin=ORIGIN).tree_size == 42
    with pytest.raises(NoteError, match="in the future"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN, now=NOW, max_future_skew=0)
    with pytest.raises(ValueError, match="max_future_skew"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN, max_future_skew=-1)


def test_two_block_extensions_are_refused() -> None:
    twice = make_checkpoint(extra=(block_extension(8, BLOCK_HASH, NOW),))
    note = sign_checkpoint(twice, LEDGER)
    with pytest.raises(NoteError, match="more than one radledger-block"):
        open_checkpoint(note, LEDGER.verifier, origin=ORIGIN)


def test_malformed_block_extension_in_signed_checkpoint_is_refused() -> None:
    bad = Checkpoint(ORIGIN, 1, ROOT, ("radledger-block 7 nope 1",))
    with pytest.raises(NoteError, match="block hash"):
        open_checkpoint(sign_checkpoint(bad, LEDGER), LEDGER.verifier, origin=ORIGIN)


def test_signed_checkpoint_with_blank_line_in_text_is_refused() -> None:
    """A correctly signed note whose text is no checkpoint: the blank line ends the header."""
    text = f"{ORIGIN}\n42\n{ROOT64}\n\n{block_extension(7, BLOCK_HASH, NOW)}\n"
    with pytest.raises(NoteError, match="extension line is empty"):
        open_checkpoint(sign_note(text, [LEDGER]), LEDGER.verifier, origin=ORIGIN)


def test_other_extensions_are_kept_opaque() -> None:
    checkpoint = make_checkpoint(extra=("some other — extension",))
    note = sign_checkpoint(checkpoint, LEDGER)
    assert open_checkpoint(note, LEDGER.verifier, origin=ORIGIN).extensions == (
        checkpoint.extensions)


@pytest.mark.parametrize(
    ("mangle", "error", "reason"),
    [
        (lambda n: n.replace("— ", "- "), NoteError, "em dash"),
        (lambda n: n[:-1], NoteError, "missing final newline"),
        (lambda n: n.replace("\n\n", "\n\n\n"), NoteError, "extra blank line"),
        (lambda n: n.replace(f"\n{ROOT64}\n", f"\n{ROOT64}\n\n"), SignatureError,
         "does not verify"),
        (lambda n: n.replace(ORIGIN + "\n", ORIGIN + " \n", 1), SignatureError, "does not verify"),
        (lambda n: n.replace(n.rsplit(" ", 1)[1], "!!!!\n"), NoteError, "bad base64"),
    ],
    ids=["hyphen", "no-final-newline", "blank-line-before-sigs", "blank-line-in-text",
         "origin-changed", "bad-base64"],
)
def test_mangled_signed_checkpoint_is_refused(
    mangle: object, error: type[RadledgerError], reason: str
) -> None:
    note = sign_checkpoint(make_checkpoint(), LEDGER)
    assert callable(mangle)
    with pytest.raises(error, match=reason):
        open_checkpoint(mangle(note), LEDGER.verifier, origin=ORIGIN)


# --- every single-byte mutation ---------------------------------------------------------------
SIGNED = sign_checkpoint(make_checkpoint(), LEDGER).encode()
COSIGNED = sign_note(make_checkpoint().marshal(), [LEDGER, WITNESS]).encode()


@given(
    note=st.sampled_from([SIGNED, COSIGNED]),
    data=st.data(),
    delta=st.integers(1, 255),
)
def test_single_byte_mutation_is_refused_or_harmless(
    note: bytes, data: st.DataObject, delta: int
) -> None:
    position = data.draw(st.integers(0, len(note) - 1))
    mutated = bytearray(note)
    mutated[position] = (mutated[position] + delta) % 256
    try:
        opened = open_checkpoint(bytes(mutated), LEDGER.verifier, origin=ORIGIN, now=NOW)
    except (NoteError, SignatureError):
        return
    # Only bytes no one checks may change: the witness's line, which the ledger key ignores.
    assert opened == make_checkpoint()
    assert note is COSIGNED
    assert position >= COSIGNED.index(b"\n\xe2\x80\x94 witness")


def test_every_single_byte_mutation_of_a_signed_checkpoint() -> None:
    """The exhaustive version for a 1-bit flip of each byte: small enough to run in full."""
    for position in range(len(SIGNED)):
        for bit in range(8):
            mutated = bytearray(SIGNED)
            mutated[position] ^= 1 << bit
            with pytest.raises((NoteError, SignatureError)):
                open_checkpoint(bytes(mutated), LEDGER.verifier, origin=ORIGIN, now=NOW)
