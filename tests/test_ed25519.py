"""Strict Ed25519: RFC 8032 vectors, and every encoding trick the strict checks must refuse.

The small-order table and the forged signatures are checked against a slow, literal RFC 8032
section 5.1 point arithmetic (the oracle below), not against the module's own constants.
"""

from __future__ import annotations

import hashlib

import pytest

from radledger.core.ed25519 import (
    SMALL_ORDER_ENCODINGS,
    L,
    P,
    SigningKey,
    check_public_key,
    load_verifier,
    verify,
)
from radledger.errors import KeyFormatError, SignatureError

# --- RFC 8032 section 7.1, TEST 1 and TEST 2 --------------------------------------------------
RFC8032_VECTORS = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
        "701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="rfc8032-test1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
        "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="rfc8032-test2",
    ),
]

# --- oracle: RFC 8032 section 5.1 arithmetic in extended coordinates ---------------------------
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


def point_add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_mul(s: int, point: Point) -> Point:
    result = IDENTITY
    while s:
        if s & 1:
            result = point_add(result, point)
        point = point_add(point, point)
        s >>= 1
    return result


def point_equal(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def recover_x(y: int, sign: int) -> int | None:
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if x & 1 != sign else x


def decompress(raw: bytes) -> Point | None:
    y = int.from_bytes(raw, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def compress(point: Point) -> bytes:
    zinv = pow(point[2], P - 2, P)
    x, y = point[0] * zinv % P, point[1] * zinv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


BASE = decompress((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))
assert BASE is not None


def secret_scalar(seed: bytes) -> int:
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little")


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def torsion_encodings() -> set[bytes]:
    """The 8 small-order points, found by projecting curve points onto the torsion subgroup."""
    for y in range(2, 1000):
        point = decompress(y.to_bytes(32, "little"))
        if point is None:
            continue
        torsion = point_mul(L, point)
        if not point_equal(point_mul(4, torsion), IDENTITY):  # order exactly 8: a generator
            return {compress(point_mul(k, torsion)) for k in range(8)}
    raise AssertionError("no order-8 point found")


SEED = bytes(range(32))
MESSAGE = b"radledger test message"


# --- RFC 8032 vectors -------------------------------------------------------------------------
@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vector_signs_and_verifies_byte_identical(
    secret: str, public: str, message: str, signature: str
) -> None:
    key = SigningKey.from_seed(bytes.fromhex(secret))
    assert key.public_key.hex() == public
    assert key.seed.hex() == secret
    assert key.sign(bytes.fromhex(message)).hex() == signature
    verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))
    load_verifier(bytes.fromhex(public))(bytes.fromhex(message), bytes.fromhex(signature))


def test_oracle_agrees_with_rfc8032_public_key() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert BASE is not None
    assert compress(point_mul(secret_scalar(seed), BASE)) == SigningKey.from_seed(seed).public_key


def test_signing_key_round_trips_and_hides_seed() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_seed(key.seed)
    assert again == key
    assert hash(again) == hash(key)
    assert key.seed.hex() not in repr(key)
    verify(key.public_key, MESSAGE, key.sign(MESSAGE))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_seed_of_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(KeyFormatError, match="32 bytes"):
        SigningKey.from_seed(bytes(length))


# --- ordinary failures ------------------------------------------------------------------------
def test_wrong_message_and_wrong_key_do_not_verify() -> None:
    key = SigningKey.from_seed(SEED)
    signature = key.sign(MESSAGE)
    with pytest.raises(SignatureError, match="does not verify"):
        verify(key.public_key, MESSAGE + b"!", signature)
    other = SigningKey.from_seed(bytes(32))
    with pytest.raises(SignatureError, match="does not verify"):
        load_verifier(other.public_key)(MESSAGE, signature)


@pytest.mark.parametrize("length", [0, 63, 65])
def test_signature_of_wrong_length_is_refused(length: int) -> None:
    key = SigningKey.from_seed(SEED)
    with pytest.raises(SignatureError, match="64 bytes"):
        verify(key.public_key, MESSAGE, bytes(length))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_public_key_of_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(SignatureError, match="32 bytes"):
        check_public_key(bytes(length))


# --- malleability: S >= L ---------------------------------------------------------------------
def test_s_plus_l_is_refused() -> None:
    key = SigningKey.from_seed(SEED)
    signature = key.sign(MESSAGE)
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    # Same equation [S]B = R + [h]A, so a verifier that reduces S would accept it.
    assert BASE is not None
    assert point_equal(point_mul(s + L, BASE), point_mul(s, BASE))
    with pytest.raises(SignatureError, match=r"S >= L \(non-canonical signature\)"):
        verify(key.public_key, MESSAGE, malleated)
    with pytest.raises(SignatureError, match=r"S >= L \(non-canonical signature\)"):
        load_verifier(key.public_key)(MESSAGE, malleated)


def test_s_at_the_bound_is_refused() -> None:
    key = SigningKey.from_seed(SEED)
    signature = key.sign(MESSAGE)[:32] + L.to_bytes(32, "little")
    with pytest.raises(SignatureError, match="S >= L"):
        verify(key.public_key, MESSAGE, signature)


# --- small order ------------------------------------------------------------------------------
def test_small_order_table_matches_the_torsion_subgroup() -> None:
    torsion = torsion_encodings()
    assert len(torsion) == 8
    sign_set_x_zero = set()
    for raw in torsion:
        point = decompress(raw)
        assert point is not None and point_equal(point_mul(8, point), IDENTITY)
        if point[0] == 0:  # identity and the order-2 point: the sign-set spelling is non-canonical
            sign_set_x_zero.add(raw[:31] + bytes([raw[31] | 0x80]))
    assert len(sign_set_x_zero) == 2
    assert SMALL_ORDER_ENCODINGS == torsion | sign_set_x_zero


@pytest.mark.parametrize("raw", sorted(SMALL_ORDER_ENCODINGS), ids=lambda b: b.hex()[:8])
def test_every_small_order_public_key_is_refused(raw: bytes) -> None:
    with pytest.raises(SignatureError, match="small-order public key"):
        check_public_key(raw)
    with pytest.raises(SignatureError, match="small-order public key"):
        load_verifier(raw)
    with pytest.raises(SignatureError, match="small-order public key"):
        verify(raw, MESSAGE, SigningKey.from_seed(SEED).sign(MESSAGE))


@pytest.mark.parametrize("raw", sorted(SMALL_ORDER_ENCODINGS), ids=lambda b: b.hex()[:8])
def test_every_small_order_r_is_refused(raw: bytes) -> None:
    key = SigningKey.from_seed(SEED)
    signature = raw + key.sign(MESSAGE)[32:]
    with pytest.raises(SignatureError, match="small-order R"):
        verify(key.public_key, MESSAGE, signature)


def test_identity_public_key_forgery_is_refused() -> None:
    """With A = identity, (rB, r) 'verifies' for every message. OpenSSL (cryptography 50)
    accepts this forgery; only the small-order check stops it."""
    identity = compress(IDENTITY)
    r = 12345
    assert BASE is not None
    forged = compress(point_mul(r, BASE)) + r.to_bytes(32, "little")
    with pytest.raises(SignatureError, match="small-order public key"):
        verify(identity, b"any message at all", forged)


def test_identity_r_forgery_is_refused() -> None:
    """R = identity and S = h*a mod L satisfies the cofactorless equation [S]B = R + [h]A.
    OpenSSL (cryptography 50) accepts it; only the small-order check stops it."""
    key = SigningKey.from_seed(SEED)
    r_bytes = compress(IDENTITY)
    s = challenge(r_bytes, key.public_key, MESSAGE) * secret_scalar(SEED) % L
    forged = r_bytes + s.to_bytes(32, "little")
    assert BASE is not None
    a_point = decompress(key.public_key)
    assert a_point is not None
    assert point_equal(point_mul(s, BASE),
                       point_mul(challenge(r_bytes, key.public_key, MESSAGE), a_point))
    with pytest.raises(SignatureError, match="small-order R"):
        verify(key.public_key, MESSAGE, forged)
    with pytest.raises(SignatureError, match="small-order R"):
        load_verifier(key.public_key)(MESSAGE, forged)


# --- non-canonical encodings ------------------------------------------------------------------
NON_CANONICAL_Y = [(y | (sign << 255)).to_bytes(32, "little")
                   for y in range(P, 2**255) for sign in (0, 1)]


@pytest.mark.parametrize("raw", NON_CANONICAL_Y, ids=lambda b: b.hex()[:4] + b.hex()[-2:])
def test_non_canonical_public_key_is_refused(raw: bytes) -> None:
    with pytest.raises(SignatureError, match=r"non-canonical public key encoding \(y >= p\)"):
        check_public_key(raw)


@pytest.mark.parametrize("raw", NON_CANONICAL_Y, ids=lambda b: b.hex()[:4] + b.hex()[-2:])
def test_non_canonical_r_is_refused(raw: bytes) -> None:
    key = SigningKey.from_seed(SEED)
    with pytest.raises(SignatureError, match=r"non-canonical R encoding \(y >= p\)"):
        verify(key.public_key, MESSAGE, raw + key.sign(MESSAGE)[32:])


def test_non_canonical_y_includes_points_on_the_curve() -> None:
    """Some y >= p reduce to a real point, so the check is not redundant with decoding."""
    assert any(decompress((y - P).to_bytes(32, "little")) for y in range(P, 2**255))
