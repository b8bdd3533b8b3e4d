"""Salted commitments (DESIGN section 1): SHA-256(salt || value) with a 32-byte random salt.

The ledger holds the commitment; the salt (and the value, when it is kept at all) lives in
the erasable side store. Once the salt is destroyed the commitment can neither be opened nor
tested against guesses, and every proof over the ledger still verifies.
"""

from __future__ import annotations

import hashlib
import hmac

from radledger.errors import InputError

SALT_SIZE = 32


def commit(salt: bytes, value: bytes) -> str:
    """The hex commitment to ``value`` under ``salt``. Requires a 32-byte salt."""
    if len(salt) != SALT_SIZE:
        raise InputError(f"a commitment salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(salt + value).hexdigest()


def opens(commitment: str, salt: bytes, value: bytes) -> bool:
    """True if (salt, value) opens ``commitment`` (compared in constant time)."""
    return len(salt) == SALT_SIZE and hmac.compare_digest(commit(salt, value), commitment)
