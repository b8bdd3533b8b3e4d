"""C2SP signed notes: the Go reference vectors, round trips, and every malformation refused.

The PeterNeumann and EnochRoot keys and notes are the published vectors of the reference
implementation (golang.org/x/mod/sumdb/note, note_test.go). Ed25519 is deterministic, so
signing must reproduce the published note byte for byte.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from radledger.core.ed25519 import SMALL_ORDER_ENCODINGS, SigningKey
from radledger.core.note import (
    MAX_SIGNATURES,
    NoteSignature,
    Signer,
    Verifier,
    format_skey,
    format_vkey,
    key_id,
    open_note,
    parse_note,
    parse_skey,
    parse_vkey,
    sign_note,
)
from radledger.errors import KeyFormatError, NoteError, SignatureError

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
    "RZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox3"
    "3WWd1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG

# The example text of the C2SP signed-note spec: Unicode, and an empty line inside the text.
POEM = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"


@pytest.fixture
def peter() -> Verifier:
    return parse_vkey(PETER_VKEY)


@pytest.fixture
def enoch() -> Verifier:
    return parse_vkey(ENOCH_VKEY)


def make_signer(name: str, n: int = 0) -> Signer:
    return Signer(name, SigningKey.from_seed(bytes([n]) * 32))


# --- reference vectors ------------------------------------------------------------------------
def test_reference_vkey_parses_and_key_id_matches(peter: Verifier) -> None:
    assert peter.name == "PeterNeumann"
    assert peter.key_id.hex() == "c74f20a3"
    assert key_id("PeterNeumann", peter.public_key).hex() == "c74f20a3"
    assert format_vkey(peter.name, peter.public_key) == PETER_VKEY


def test_reference_skey_parses_and_formats_back(peter: Verifier) -> None:
    signer = parse_skey(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == peter.key_id
    assert signer.signing_key.public_key == peter.public_key
    assert signer.verifier == peter
    assert format_skey(signer.name, signer.signing_key) == PETER_SKEY


def test_signing_reproduces_the_reference_note() -> None:
    assert sign_note(TEXT, [parse_skey(PETER_SKEY)]) == PETER_NOTE


def test_reference_note_opens(peter: Verifier) -> None:
    opened = open_note(PETER_NOTE, [peter])
    assert opened.text == TEXT
    assert opened.verified == [peter]
    assert opened.unknown == []
    assert open_note(PETER_NOTE.encode("utf-8"), [peter]).text == TEXT


def test_signature_by_an_unknown_key_is_listed_not_refused(peter: Verifier) -> None:
    opened = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert opened.verified == [peter]
    assert opened.unknown == [("EnochRoot", bytes.fromhex("af0cfe78"))]


def test_both_reference_signatures_verify(peter: Verifier, enoch: Verifier) -> None:
    opened = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert opened.verified == [peter, enoch]
    assert opened.unknown == []


def test_no_known_signature_names_the_unknown_key_ids(enoch: Verifier) -> None:
    with pytest.raises(SignatureError, match=r"no signature from a known key.*unknown key ID: "
                                             r"PeterNeumann\+c74f20a3"):
        open_note(PETER_NOTE, [enoch])
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(PETER_NOTE, [])


def test_same_name_other_key_id_is_an_unknown_key(peter: Verifier) -> None:
    impostor = Verifier("PeterNeumann", make_signer("x").signing_key.public_key)
    assert impostor.key_id != peter.key_id
    with pytest.raises(SignatureError, match="unknown key ID: PeterNeumann"):
        open_note(PETER_NOTE, [impostor])


def test_same_key_id_other_name_is_an_unknown_key(peter: Verifier) -> None:
    raw = base64.b64decode(PETER_SIG.split(" ")[2])
    assert raw[:4] == peter.key_id
    note = TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "PeterNeuman")
    with pytest.raises(SignatureError, match="unknown key ID: PeterNeuman\\+c74f20a3"):
        open_note(note, [peter])


def test_spec_example_note_parses() -> None:
    note = (
        POEM + "\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+Ehf"
        "LW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
    )
    parsed = parse_note(note)
    assert parsed.text == POEM
    assert [(s.name, len(s.signature)) for s in parsed.signatures] == [
        ("quasimodo.example/salvatore", 64)
    ]
    assert parsed.signatures[0].key_id.hex() == "367ba04b"


# --- round trips ------------------------------------------------------------------------------
def test_round_trip_with_several_signers_and_unicode_text() -> None:
    signers = [make_signer("quasimodo.example/salvatore", 1), make_signer("witness.example", 2)]
    note = sign_note(POEM, signers)
    assert note.startswith(POEM + "\n— quasimodo.example/salvatore ")
    opened = open_note(note, [s.verifier for s in reversed(signers)])
    assert opened.text == POEM
    assert opened.verified == [s.verifier for s in signers]
    parsed = parse_note(note)
    assert [NoteSignature(s.name, s.key_id, s.signing_key.sign(POEM.encode())) for s in signers] \
        == list(parsed.signatures)


def test_generated_keys_round_trip_through_strings() -> None:
    key = SigningKey.generate()
    signer = parse_skey(format_skey("example.org/ledger", key))
    verifier = parse_vkey(format_vkey("example.org/ledger", key.public_key))
    assert signer.verifier == verifier
    assert open_note(sign_note("hello\n", [signer]), [verifier]).verified == [verifier]


def test_up_to_the_limit_of_signatures_is_accepted(peter: Verifier) -> None:
    note = TEXT + "\n" + PETER_SIG * MAX_SIGNATURES
    assert open_note(note, [peter]).verified == [peter]


# --- refused notes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("note", "reason"),
    [
        pytest.param(TEXT, "no blank line", id="text-only"),
        pytest.param(TEXT + "\n", "no signature lines", id="no-signatures"),
        pytest.param(TEXT + "\n" + PETER_SIG[:-1], "missing final newline", id="no-final-newline"),
        pytest.param("\x01" + PETER_NOTE, "control character 0x01", id="control-char"),
        pytest.param(PETER_NOTE.replace("\n", "\r\n", 1), "control character 0x0d", id="crlf"),
        pytest.param(TEXT + "\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
                     "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=", "missing final newline",
                     id="bad-name-no-newline"),
        pytest.param(TEXT + "\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
                     "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n", "bad base64", id="space-in-name"),
        pytest.param(PETER_NOTE + "Unexpected line.\n", "em dash", id="unexpected-line"),
        pytest.param(PETER_NOTE.replace("— ", "- "), "em dash \\(U\\+2014\\)", id="hyphen"),
        pytest.param(PETER_NOTE.replace("— ", "– "), "em dash", id="en-dash"),
        pytest.param(PETER_NOTE.replace("— ", "—"), "em dash", id="no-space-after-dash"),
        pytest.param(TEXT + "\n\n" + PETER_SIG, "extra blank line", id="extra-blank-line"),
        pytest.param(PETER_NOTE + "\n", "no signature lines", id="trailing-blank-line"),
        pytest.param("\n\n" + PETER_SIG, "text is empty", id="empty-text"),
        pytest.param(PETER_NOTE.replace("x08go/", "x08go!"), "bad base64", id="bad-base64"),
        pytest.param(PETER_NOTE.replace("JnAM=", "JnAN="), "non-canonical base64",
                     id="base64-padding-bits"),
        pytest.param(PETER_NOTE.replace("JnAM=", "JnAM"), "bad base64", id="base64-no-padding"),
        pytest.param(TEXT + "\n— PeterNeumann\n", "not '— <name> <base64>'", id="no-signature"),
        pytest.param(TEXT + "\n— PeterNeumann  x08go\n", "key name is empty|bad base64",
                     id="double-space"),
        pytest.param(TEXT + "\n— PeterNeumann AAAAAA==\n", "no signature after the key ID",
                     id="key-id-only"),
        pytest.param(TEXT + "\n— a+b AAAAAAA=\n", "contains '\\+'", id="plus-in-name"),
        pytest.param("caf\ud800\n\n" + PETER_SIG, "lone surrogate", id="lone-surrogate"),
        pytest.param(TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), "more than 100",
                     id="too-many-signatures"),
    ],
)
def test_malformed_note_is_refused(peter: Verifier, note: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        open_note(note, [peter])


def test_invalid_utf8_is_refused(peter: Verifier) -> None:
    with pytest.raises(NoteError, match="not valid UTF-8"):
        open_note(b"\xff" + PETER_NOTE.encode(), [peter])


def test_signature_over_other_text_is_refused(peter: Verifier) -> None:
    note = PETER_NOTE.replace("cryptography", "cryptographY")
    with pytest.raises(SignatureError,
                       match=r"PeterNeumann\+c74f20a3 refused: signature does not verify"):
        open_note(note, [peter])


def test_corrupt_signature_of_known_key_is_refused(peter: Verifier) -> None:
    note = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError, match="PeterNeumann"):
        open_note(note, [peter])


def test_bad_repeat_of_a_good_signature_is_refused(peter: Verifier) -> None:
    """Every line by a known key is verified, not only the first."""
    other = parse_skey(PETER_SKEY).signing_key.sign(b"other text\n")
    bad = "— PeterNeumann " + base64.b64encode(peter.key_id + other).decode() + "\n"
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(PETER_NOTE + bad, [peter])


def test_ambiguous_verifiers_are_refused(peter: Verifier) -> None:
    # A second key under the same name with a forged-equal key ID cannot be built from real
    # keys, so fake it by replacing the key ID of a valid verifier.
    twin = Verifier("PeterNeumann", make_signer("x").signing_key.public_key)
    object.__setattr__(twin, "key_id", peter.key_id)
    with pytest.raises(SignatureError, match="ambiguous key PeterNeumann\\+c74f20a3"):
        open_note(PETER_NOTE, [peter, twin])
    assert open_note(PETER_NOTE, [peter, parse_vkey(PETER_VKEY)]).verified == [peter]


# --- sign_note preconditions ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("abc", "missing final newline"),
        ("abc\n\n", "ends with an empty line"),
        ("\n", "ends with an empty line"),
        ("a\tb\n", "control character 0x09"),
        ("caf\udce9\n", "lone surrogate"),
    ],
)
def test_sign_note_refuses_bad_text(text: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        sign_note(text, [make_signer("a")])


def test_sign_note_needs_distinct_signers() -> None:
    with pytest.raises(ValueError, match="1 to 100 signers"):
        sign_note(TEXT, [])
    with pytest.raises(ValueError, match="duplicate signer"):
        sign_note(TEXT, [make_signer("a"), make_signer("a")])


# --- key names and key strings ----------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\nb", "a\tb", "a\u00a0b", "a\u2003b", "a\u3000b", "\x7f\x01"]
)
def test_invalid_key_names_are_refused(name: str) -> None:
    key = SigningKey.from_seed(bytes(32))
    with pytest.raises(KeyFormatError):
        Signer(name, key)
    with pytest.raises(KeyFormatError):
        Verifier(name, key.public_key)
    with pytest.raises(KeyFormatError):
        format_vkey(name, key.public_key)


def test_every_substring_and_byte_change_of_the_vkey_is_refused() -> None:
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(KeyFormatError):
                    parse_vkey(PETER_VKEY[i:j])
    for i, char in enumerate(PETER_VKEY):
        with pytest.raises(KeyFormatError):
            parse_vkey(PETER_VKEY[:i] + chr(ord(char) + 1) + PETER_VKEY[i + 1 :])


def test_every_substring_and_byte_change_of_the_skey_is_refused() -> None:
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(KeyFormatError):
                    parse_skey(PETER_SKEY[i:j])
    for i, char in enumerate(PETER_SKEY):
        with pytest.raises(KeyFormatError):
            parse_skey(PETER_SKEY[:i] + chr(ord(char) + 1) + PETER_SKEY[i + 1 :])


def _vkey(name: str, raw: bytes) -> str:
    """A vkey string with a key ID that matches whatever ``raw`` holds."""
    kid = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    return f"{name}+{kid.hex()}+{base64.b64encode(raw).decode()}"


def test_vkey_with_wrong_algorithm_or_length_is_refused() -> None:
    # The reference's own manglings, with adjusted key IDs.
    with pytest.raises(KeyFormatError, match="non-canonical base64"):
        parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    long_key = bytes([0x01]) + parse_vkey(PETER_VKEY).public_key + b"\0"
    with pytest.raises(KeyFormatError, match="33 bytes"):
        parse_vkey(_vkey("PeterNeumann", long_key))
    with pytest.raises(KeyFormatError, match="not Ed25519"):
        parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    cosignature_key = bytes([0x04]) + parse_vkey(PETER_VKEY).public_key
    with pytest.raises(KeyFormatError, match="key type 0x04"):
        parse_vkey(_vkey("PeterNeumann", cosignature_key))


@pytest.mark.parametrize("raw", sorted(SMALL_ORDER_ENCODINGS), ids=lambda b: b.hex()[:8])
def test_vkey_with_small_order_key_is_refused(raw: bytes) -> None:
    with pytest.raises(KeyFormatError, match="small-order public key"):
        parse_vkey(_vkey("evil.example", b"\x01" + raw))


def test_vkey_key_id_must_match_and_be_lowercase() -> None:
    with pytest.raises(KeyFormatError, match="does not match"):
        parse_vkey(PETER_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(KeyFormatError, match="lowercase hex"):
        parse_vkey(PETER_VKEY.replace("c74f20a3", "C74F20A3"))
    with pytest.raises(KeyFormatError, match="does not match"):
        parse_vkey(PETER_VKEY.replace("PeterNeumann", "PeterNeuman"))
