"""C2SP tlog-cosignature v1 (Ed25519, type 0x04): published vectors, round trips, tampering.

The vectors are a real checkpoint of arche2025h1.staging.ct.transparency.dev cosigned by four
public witnesses, with their published verifier keys (also pinned as a test vector by other
implementations; transparency-dev/formats note/note_cosigv1_test.go lists the remora key as
a native 0x04 verifier key).
"""

from __future__ import annotations

import base64

import pytest

from radledger.core.cosignature import (
    CosignatureVerifier,
    Cosigner,
    cosign,
    cosignature_key_id,
    cosignature_message,
    format_witness_skey,
    format_witness_vkey,
    open_cosignatures,
    parse_witness_skey,
    parse_witness_vkey,
)
from radledger.core.ed25519 import SigningKey
from radledger.core.note import Signer, format_skey, format_vkey, key_id, open_note, sign_note
from radledger.errors import KeyFormatError, NoteError, SignatureError

BODY = ("arche2025h1.staging.ct.transparency.dev\n1432088532\n"
        "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n")
TIME = 1779573024
VECTORS = [
    ("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
     "— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIo"
     "bWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"),
    ("witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
     "— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr"
     "+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n"),
    ("witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
     "— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/i"
     "EcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"),
    ("transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4"
     "CPdiVEPM",
     "— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTz"
     "wZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"),
]
LOG_LINE = ("— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lef"
            "whUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n")
NOTE = BODY + "\n" + LOG_LINE + "".join(line for _, line in VECTORS)


@pytest.mark.parametrize(("vkey", "line"), VECTORS, ids=[v.split("+")[0] for v, _ in VECTORS])
def test_published_cosignatures_verify(vkey: str, line: str) -> None:
    verifier = parse_witness_vkey(vkey)
    assert verifier.vkey == vkey  # formatting reproduces the published key exactly
    text, found = open_cosignatures(NOTE, [verifier])
    assert text == BODY
    assert [(c.verifier, c.timestamp, c.line) for c in found] == [(verifier, TIME, line)]


def test_published_cosignature_on_another_body_is_refused() -> None:
    verifier = parse_witness_vkey(VECTORS[0][0])
    forged = BODY.replace("1432088532", "1432088533") + "\n" + VECTORS[0][1]
    with pytest.raises(SignatureError, match="remora.n621.de refused"):
        open_cosignatures(forged, [verifier])


def test_key_id_uses_type_0x04_not_the_log_type() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    assert cosignature_key_id("w", key.public_key) != key_id("w", key.public_key)
    cosigner = Cosigner("example.org/w", key)
    line = cosign("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", cosigner, 5)
    # a log verifier with the same name and key does not even recognise the line
    note = "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n" + line
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(note, [Signer("example.org/w", key).verifier])


def test_message_is_header_time_then_body() -> None:
    assert cosignature_message("a\n", 1679315147) == b"cosignature/v1\ntime 1679315147\na\n"
    with pytest.raises(NoteError):
        cosignature_message("a\n", 2**63)
    with pytest.raises(NoteError):
        cosignature_message("a", 1)


def _signed(text: str, cosigner: Cosigner, time: int) -> str:
    log = Signer("example.org/log", SigningKey.from_seed(b"l" * 32))
    return sign_note(text, [log]) + cosign(text, cosigner, time)


TEXT = "example.org/log\n7\n" + base64.b64encode(b"r" * 32).decode() + "\nradledger-block x\n"


def test_round_trip_and_timestamp() -> None:
    cosigner = Cosigner("example.org/w1", SigningKey.generate())
    note = _signed(TEXT, cosigner, 1_700_000_000)
    text, found = open_cosignatures(note, [cosigner.verifier])
    assert text == TEXT and found[0].timestamp == 1_700_000_000
    other = Cosigner("example.org/w2", SigningKey.generate())
    assert open_cosignatures(note, [other.verifier])[1] == []  # unknown keys are ignored


@pytest.mark.parametrize("where", ["extension", "size", "timestamp", "signature", "key id"])
def test_tampering_is_refused(where: str) -> None:
    cosigner = Cosigner("example.org/w1", SigningKey.from_seed(b"w" * 32))
    line = cosign(TEXT, cosigner, 1_700_000_000)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    text = TEXT
    if where == "extension":
        text = TEXT.replace("block x", "block y")
    elif where == "size":
        text = TEXT.replace("\n7\n", "\n8\n")
    elif where == "timestamp":
        raw[11] ^= 1
    elif where == "signature":
        raw[-1] ^= 0x40
    else:
        raw[0] ^= 1
    tampered = f"\u2014 example.org/w1 {base64.b64encode(bytes(raw)).decode()}\n"
    if where == "key id":  # an unknown key ID is not this witness: nothing verifies
        assert open_cosignatures(text + "\n" + tampered, [cosigner.verifier])[1] == []
        return
    with pytest.raises(SignatureError):
        open_cosignatures(text + "\n" + tampered, [cosigner.verifier])


def test_wrong_length_cosignature_is_refused() -> None:
    cosigner = Cosigner("example.org/w1", SigningKey.from_seed(b"w" * 32))
    short = base64.b64encode(cosigner.key_id + bytes(64)).decode()  # no timestamp
    with pytest.raises(SignatureError, match="not timestamp and signature"):
        open_cosignatures(f"{TEXT}\n\u2014 example.org/w1 {short}\n", [cosigner.verifier])


def test_vkey_and_skey_round_trip() -> None:
    key = SigningKey.generate()
    vkey = format_witness_vkey("example.org/w", key.public_key)
    assert parse_witness_vkey(vkey) == CosignatureVerifier("example.org/w", key.public_key)
    skey = format_witness_skey("example.org/w", key)
    assert parse_witness_skey(skey) == Cosigner("example.org/w", key)
    # a plain signed-note (0x01) signer key is accepted and used as a cosigner
    assert parse_witness_skey(format_skey("example.org/w", key)).verifier.vkey == vkey


@pytest.mark.parametrize(("bad", "message"), [
    ("w+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(), "refused"),
    (format_vkey("w", SigningKey.from_seed(b"k" * 32).public_key), "not 0x04"),
    ("w+deadbeef+" + base64.b64encode(b"\x04" + SigningKey.from_seed(b"k" * 32).public_key
                                      ).decode(), "does not match"),
    ("w+1234", r"not name\+keyid\+key"),
])
def test_bad_witness_vkeys_are_refused(bad: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        parse_witness_vkey(bad)
