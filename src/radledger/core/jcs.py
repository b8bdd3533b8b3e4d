"""RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value.

``canonicalize`` writes object keys sorted by UTF-16 code units, no whitespace, minimal string
escapes, numbers as ECMAScript ``Number.prototype.toString`` does, in UTF-8. ``loads`` is the
strict reader for the same domain (I-JSON, RFC 7493): it refuses duplicate keys, lone
surrogates, and numbers that are not finite or not exact. ``loads_canonical`` also demands that
the bytes are canonical already, which a verifier needs before it trusts a hash over them.

Integers stay within +-2**53 (``MAX_SAFE_INTEGER``), where each is exactly a double. But RFC 8785
writes integral doubles from 2**53 up to 1e21 in plain digits (1e20 -> ``100000000000000000000``),
so ``loads`` reads such a literal as that float when it is exactly RFC 8785's spelling of it, and
rejects every other integer literal beyond 2**53 as a loss of precision.

Values without object keys beyond the Basic Multilingual Plane, and whose floats are all
non-integral with magnitude in [1e-4, 1e16), go, after one validating walk, through the C
encoder of :mod:`json`: there code point order is UTF-16 order, its escapes are JCS's, and
float repr is ECMAScript's layout. Everything else goes through a small pure-Python serializer.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from types import MappingProxyType
from typing import Any, TypeAlias

from radledger.errors import CanonicalJSONError

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "JSONValue", "canonicalize", "loads", "loads_canonical"]

JSONValue: TypeAlias = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]

MAX_SAFE_INTEGER = 2**53
MAX_DEPTH = 64
"""Most arrays and objects that may enclose one another; deeper input is refused."""

# ECMAScript writes a number in fixed notation when 1e-7 < |x| < 1e21, as 0.<digits> * 10**point
_FIXED_POINT_MIN = -6
_FIXED_POINT_MAX = 21
_LONGEST_INTEGRAL_DOUBLE = 1 + _FIXED_POINT_MAX  # "-" and 21 digits
_SHOWN = 40
_REPR_IS_ES_MIN = 1e-4
_REPR_IS_ES_MAX = 1e16
# which serializer a value can take, worst of its parts (so combined with min)
_SLOW, _AS_INT, _FAST = 0, 1, 2  # characters of an offending literal repeated in a message

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_ESCAPES = MappingProxyType(
    {chr(code): f"\\u{code:04x}" for code in range(0x20)}
    | {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
)
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=False
)


class _Invalid(Exception):
    """Raised inside the walk; collects the path innermost first on its way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = []


def _format_path(steps: list[str | int]) -> str:
    parts = ["$"]
    for step in reversed(steps):
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif _IDENTIFIER.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step)}]")
    return "".join(parts)


def _check_text(text: str, what: str) -> None:
    if not text.isascii() and (found := _SURROGATE.search(text)):
        raise _Invalid(f"{what} contains a lone surrogate U+{ord(found.group()):04X}")


def _check_scalar(value: object) -> int:
    if type(value) is str:
        _check_text(value, "string")
    elif type(value) is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise _Invalid(f"integer {value} is beyond +-2**53; write it as a string")
    elif type(value) is float:
        if not math.isfinite(value):
            raise _Invalid(f"float {value} is not a finite number")
        if value.is_integer():
            # ECMAScript writes an integral double up to 2**53 as the integer's digits
            return _AS_INT if abs(value) <= MAX_SAFE_INTEGER else _SLOW
        # repr (what json's encoder writes) equals ECMAScript's layout for non-integral
        # magnitudes in [1e-4, 1e16): plain digits with a point, no exponent
        return _FAST if _REPR_IS_ES_MIN <= abs(value) < _REPR_IS_ES_MAX else _SLOW
    elif value is not None and type(value) is not bool:
        raise _Invalid(f"{type(value).__name__} is not a JSON type")
    return _FAST


def _check(value: object, depth: int) -> int:
    """Raise _Invalid unless value is a JSONValue that canonicalize accepts.

    Returns whether the C encoder writes it exactly (no floats, no astral keys). Exact types
    only: a subclass (IntEnum, OrderedDict) could serialize differently on the two paths.
    """
    if type(value) is not list and type(value) is not dict:
        return _check_scalar(value)
    if depth >= MAX_DEPTH:
        raise _Invalid(f"nesting deeper than {MAX_DEPTH}")
    fast = _FAST
    if type(value) is list:
        for index, item in enumerate(value):
            try:
                fast = min(_check(item, depth + 1), fast)
            except _Invalid as invalid:
                invalid.path.append(index)
                raise
    elif type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise _Invalid(f"object key {key!r} is {type(key).__name__}, not str")
            try:
                _check_text(key, "object key")
                if not key.isascii() and _ASTRAL.search(key):
                    fast = _SLOW
                fast = min(_check(item, depth + 1), fast)
            except _Invalid as invalid:
                invalid.path.append(key)
                raise
    return fast


def _validate(value: object) -> int:
    try:
        return _check(value, 0)
    except _Invalid as invalid:
        raise CanonicalJSONError(f"{invalid.reason} at {_format_path(invalid.path)}") from None


def _format_number(number: float) -> str:
    """ECMAScript Number::toString of a finite float (RFC 8785 section 3.2.2.3).

    Python's repr already yields the shortest digits that round-trip, choosing the closest
    when several do, as ECMAScript requires; only the layout differs.
    """
    if number == 0:
        return "0"  # also -0.0
    text = repr(number)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    count = len(digits)
    if count <= point <= _FIXED_POINT_MAX:
        return sign + digits + "0" * (point - count)
    if 0 < point <= _FIXED_POINT_MAX:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if _FIXED_POINT_MIN < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    power = point - 1
    mark = "+" if power >= 0 else "-"
    head = digits if count == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{head}e{mark}{abs(power)}"


def _quote(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(lambda match: _ESCAPES[match.group()], text) + '"'


def _utf16_order(member: tuple[str, JSONValue]) -> bytes:
    return member[0].encode("utf-16-be")


def _serialize_slow(value: JSONValue) -> str:
    """RFC 8785 text of value, written out rule by rule. Requires: value passed _check."""
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict):
        members = sorted(value.items(), key=_utf16_order)
        return "{" + ",".join(f"{_quote(k)}:{_serialize_slow(v)}" for k, v in members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(_serialize_slow, value)) + "]"
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _format_number(value)


def _serialize_fast(value: JSONValue) -> str:
    """RFC 8785 text of value. Requires: _check(value, 0) returned True."""
    return _ENCODER.encode(value)


def _integral_floats_as_int(value: JSONValue) -> JSONValue:
    """A copy with every integral float replaced by its int. Requires: _check returned
    _AS_INT, so each float is integral within +-2**53 or non-integral in [1e-4, 1e16)."""
    if type(value) is float:
        return int(value) if value.is_integer() else value
    if type(value) is list:
        return [_integral_floats_as_int(item) for item in value]
    if type(value) is dict:
        return {key: _integral_floats_as_int(item) for key, item in value.items()}
    return value


def _serialize(value: JSONValue, path: int) -> bytes:
    if path == _FAST:
        text = _serialize_fast(value)
    elif path == _AS_INT:
        text = _serialize_fast(_integral_floats_as_int(value))
    else:
        text = _serialize_slow(value)
    return text.encode("utf-8")


def canonicalize(value: JSONValue) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of value.

    Accepts exactly the types of JSONValue (not subclasses, tuples or bytes), nested at most
    MAX_DEPTH deep. Raises CanonicalJSONError, naming the JSON path, for a non-finite float,
    an int beyond +-2**53, a lone surrogate in a string or key, a non-str key, another type,
    or deeper nesting (a cyclic value counts as too deep).
    """
    return _serialize(value, _validate(value))


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    member = dict(pairs)
    if len(member) != len(pairs):
        key = next(key for key, times in Counter(key for key, _ in pairs).items() if times > 1)
        raise CanonicalJSONError(f"duplicate object key {json.dumps(key)}")
    return member


def _integer(literal: str) -> int | float:
    if len(literal) <= _LONGEST_INTEGRAL_DOUBLE:
        number = int(literal)
        if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            return number
        # RFC 8785 writes integral doubles below 1e21 in plain digits: accept exactly that.
        if _format_number(float(number)) == literal:
            return float(number)
    raise CanonicalJSONError(
        f"integer {literal[:_SHOWN]} is beyond +-2**53 and would lose precision as a double"
    )


def _float(literal: str) -> float:
    number = float(literal)
    if math.isinf(number):
        raise CanonicalJSONError(f"number {literal[:_SHOWN]} overflows a double")
    return number


def _constant(name: str) -> float:
    raise CanonicalJSONError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_int=_integer,
    parse_float=_float,
    parse_constant=_constant,
)


def _check_depth(text: str) -> None:
    # json's C scanner recurses per level and would raise RecursionError; count first.
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for token in _STRUCTURE.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise CanonicalJSONError(f"nesting deeper than {MAX_DEPTH} at char {token.start()}")
        elif bracket in ("]", "}"):
            depth -= 1


def _decode(data: bytes | str) -> str:
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            raise CanonicalJSONError("byte order mark before JSON text")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = f"invalid UTF-8 at byte {error.start}: {error.reason}"
            raise CanonicalJSONError(reason) from error
    if isinstance(data, str):
        if data.startswith("\ufeff"):
            raise CanonicalJSONError("byte order mark before JSON text")
        return data
    raise CanonicalJSONError(f"JSON text must be bytes or str, not {type(data).__name__}")


def _decode_json(data: bytes | str) -> tuple[JSONValue, str]:
    text = _decode(data)
    _check_depth(text)
    try:
        return _DECODER.decode(text), text
    except json.JSONDecodeError as error:
        raise CanonicalJSONError(
            f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}"
            f" (char {error.pos})"
        ) from error


def _parse(data: bytes | str) -> tuple[JSONValue, int]:
    value, _ = _decode_json(data)
    return value, _validate(value)


def loads(data: bytes | str) -> JSONValue:
    """Parse JSON text strictly into the values canonicalize accepts.

    bytes must be UTF-8 without a byte order mark. Raises CanonicalJSONError for invalid JSON
    or UTF-8, a BOM, duplicate object keys at any depth, NaN or Infinity, an integer beyond
    +-2**53 (unless it is RFC 8785's spelling of a double, read as that float), a number that
    overflows a double, a lone surrogate (escaped or raw), or nesting deeper than MAX_DEPTH.
    """
    value, text = _decode_json(data)
    # The decoder's hooks already refused duplicates, NaN, inexact numbers and overflow; only a
    # lone surrogate is left for the walk to find, and it can only come from an escape or, in
    # a str, a raw surrogate. Skip the walk when neither can be there (the append hot path).
    if _SURROGATE_ESCAPE.search(text) or (isinstance(data, str) and _SURROGATE.search(text)):
        _validate(value)
    return value


def loads_canonical(data: bytes) -> JSONValue:
    """Parse data as loads does and require it to be RFC 8785 canonical already.

    Raises CanonicalJSONError for everything loads rejects, and when canonicalize of the result
    differs from data (the message gives the first differing byte).
    """
    if not isinstance(data, bytes):
        raise CanonicalJSONError(f"canonical JSON must be bytes, not {type(data).__name__}")
    value, fast = _parse(data)
    canonical = _serialize(value, fast)
    if canonical != data:
        pairs = zip(canonical, data, strict=False)
        at = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(canonical), len(data)))
        raise CanonicalJSONError(f"not in RFC 8785 canonical form: first difference at byte {at}")
    return value
