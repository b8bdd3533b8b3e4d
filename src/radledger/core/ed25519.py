"""Strict Ed25519 (RFC 8032) over ``cryptography``.

OpenSSL verifies cofactorless and decides on its own which encodings it tolerates. A ledger
needs one answer everywhere, so before OpenSSL sees a signature we refuse what RFC 8032 and
libsodium refuse:

- a signature whose scalar S is not reduced (S >= L): otherwise ``(R, S + L)`` is a second
  valid signature for the same message (malleability);
- an R or public key whose y coordinate is not reduced (y >= p): a second encoding of a point;
- an R or public key of small order (the 8 torsion points, plus the identity and the order-2
  point written with the sign bit set): with a small-order key, one signature verifies for
  many messages.

The checks are integer compares and a set lookup, cheap next to the curve arithmetic.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from radledger.errors import KeyFormatError, SignatureError

__all__ = [
    "KEY_SIZE",
    "L",
    "P",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "SMALL_ORDER_ENCODINGS",
    "SigningKey",
    "VerifyFn",
    "check_public_key",
    "load_verifier",
    "verify",
]

KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64

P = 2**255 - 19
"""The field prime."""
L = 2**252 + 27742317777372353535851937790883648493
"""The order of the prime-order subgroup (and the bound on S)."""

_SIGN_BIT = 1 << 255
_Y_MASK = _SIGN_BIT - 1

# y of the order-8 points; the other order-8 points have y = P - _Y_ORDER_8. The remaining torsion
# points are the identity (y = 1), the order-2 point (y = P - 1) and the order-4 points (y = 0).
# tests/test_ed25519.py recomputes the whole torsion subgroup with point arithmetic.
_Y_ORDER_8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022


def _encode(y: int, sign: int) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


SMALL_ORDER_ENCODINGS: frozenset[bytes] = frozenset(
    _encode(y, sign)
    for y in (1, P - 1, 0, _Y_ORDER_8, P - _Y_ORDER_8)
    # Both signs for every y: for y = 0 and the order-8 y values these are the two points with
    # that y; for y = 1 and y = P - 1 (x = 0) the sign-set form is a non-canonical encoding of
    # the same point, which libsodium blocks too.
    for sign in (0, 1)
)
"""Encodings refused as keys or R: the 8 small-order points and the two x = 0 points with the
sign bit set. (Encodings with y >= p are refused by the canonicity check before this one.)"""

VerifyFn = Callable[[bytes, bytes], None]
"""``verify(message, signature)``: returns None or raises SignatureError."""


class SigningKey:
    """An Ed25519 private key. Its repr shows only the public key."""

    __slots__ = ("_key", "_public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public_key = key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from the operating system's random source."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key for an RFC 8032 32-byte seed (the "secret key" of the RFC).

        Raises KeyFormatError unless ``seed`` is 32 bytes.
        """
        if len(seed) != SEED_SIZE:
            raise KeyFormatError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @property
    def seed(self) -> bytes:
        """The 32-byte seed. Secret."""
        return self._key.private_bytes_raw()

    @property
    def public_key(self) -> bytes:
        """The 32-byte RFC 8032 public key."""
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        """The 64-byte deterministic RFC 8032 signature of ``message``."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self._public_key.hex()})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return hmac.compare_digest(self.seed, other.seed)

    def __hash__(self) -> int:
        return hash(self._public_key)


def _reject_point(raw: bytes, what: str) -> None:
    if int.from_bytes(raw, "little") & _Y_MASK >= P:
        raise SignatureError(f"non-canonical {what} encoding (y >= p)")
    if raw in SMALL_ORDER_ENCODINGS:
        raise SignatureError(f"small-order {what}")


def _load_public_key(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != KEY_SIZE:
        raise SignatureError(f"public key must be {KEY_SIZE} bytes, got {len(raw)}")
    _reject_point(raw, "public key")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise SignatureError(f"public key not accepted by cryptography: {exc}") from None


def check_public_key(raw: bytes) -> None:
    """Accept ``raw`` as an Ed25519 public key or raise SignatureError.

    Refused: not 32 bytes, y >= p, a small-order point (SMALL_ORDER_ENCODINGS), or anything
    ``cryptography`` will not load. A y with no point on the curve is not detected here; such a
    key never verifies a signature.
    """
    _load_public_key(raw)


def _check_signature(signature: bytes) -> None:
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"signature must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
    if int.from_bytes(signature[32:], "little") >= L:
        raise SignatureError("S >= L (non-canonical signature)")
    _reject_point(signature[:32], "R")


def _loaded(public_key: Ed25519PublicKey) -> VerifyFn:
    def verify_loaded(message: bytes, signature: bytes) -> None:
        _check_signature(signature)
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            raise SignatureError("signature does not verify") from None

    return verify_loaded


def load_verifier(public_key: bytes) -> VerifyFn:
    """Check ``public_key`` once and return a fast ``verify(message, signature)`` for it.

    Raises SignatureError if the key is refused (see check_public_key). The returned function
    raises SignatureError exactly as ``verify`` does.
    """
    return _loaded(_load_public_key(public_key))


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Return if ``signature`` is a strict Ed25519 signature of ``message`` by ``public_key``.

    Raises SignatureError naming the reason: wrong signature length, S >= L, R non-canonical or
    small-order, a refused public key (see check_public_key), or a signature that does not
    verify. For many signatures by one key, use load_verifier.
    """
    _check_signature(signature)
    key = _load_public_key(public_key)
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
