"""Keyed pseudonyms: deterministic under one key, unlinkable across keys and namespaces."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radledger.core.pseudonym import pseudonym
from radledger.errors import InputError

KEY = bytes(range(32))


def test_matches_hmac_sha256_of_namespace_nul_identifier() -> None:
    want = hmac.new(KEY, b"PatientID\0PAT-0001", hashlib.sha256).hexdigest()
    assert pseudonym(KEY, "PatientID", "PAT-0001") == want


@given(st.text(min_size=1, max_size=64).filter(lambda s: "\0" not in s))
def test_same_key_same_pseudonym_other_key_or_role_another(identifier: str) -> None:
    a = pseudonym(KEY, "PatientID", identifier)
    assert a == pseudonym(KEY, "PatientID", identifier)
    assert a != pseudonym(bytes(32), "PatientID", identifier)
    assert a != pseudonym(KEY, "StudyInstanceUID", identifier)


def test_enumerating_ids_without_the_key_recovers_nothing() -> None:
    stored = {pseudonym(KEY, "PatientID", f"PAT-{n:04d}") for n in range(200)}
    guessed_key = b"\x01" * 32  # an attacker without the project key
    guesses = {pseudonym(guessed_key, "PatientID", f"PAT-{n:04d}") for n in range(10_000)}
    assert not stored & guesses
    plain_hashes = {hashlib.sha256(f"PAT-{n:04d}".encode()).hexdigest() for n in range(10_000)}
    assert not stored & plain_hashes


@pytest.mark.parametrize(("key", "namespace", "identifier", "message"), [
    (b"short", "PatientID", "x", "32 bytes"),
    (KEY, "PatientName", "x", "unknown pseudonym namespace"),
    (KEY, "PatientID", "", "1-4096 characters"),
    (KEY, "PatientID", "a\0b", "without NUL"),
    (KEY, "PatientID", "x" * 4097, "1-4096 characters"),
])
def test_bad_arguments_are_typed_errors(key: bytes, namespace: str, identifier: str,
                                        message: str) -> None:
    with pytest.raises(InputError, match=message):
        pseudonym(key, namespace, identifier)
