"""RFC 8785 canonical JSON: the RFC's own examples, number layout, every rejection, round trips."""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from radledger.core import jcs
from radledger.core.jcs import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    JSONValue,
    canonicalize,
    loads,
    loads_canonical,
)
from radledger.errors import CanonicalJSONError

# --- RFC 8785 examples, byte for byte -------------------------------------------------------

# Section 3.2.3: keys sorted by UTF-16 code units. U+1F600 is the surrogate pair D83D DE00, which
# sorts below U+FB33 in UTF-16 although its code point is above it.
RFC_SORTING_INPUT: dict[str, JSONValue] = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\U0001f600": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}
RFC_SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()

# Section 3.2.2: the example of all three serialization rules, parsed from its JSON text.
RFC_VALUES_INPUT = rb"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_VALUES_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode()

# The RFC author's test data (cyberphone/json-canonicalization, testdata/): weird.json and
# structures.json.
WEIRD_INPUT = rb"""{
  "\u20ac": "Euro Sign",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}"""
WEIRD_OUTPUT = (
    '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()
STRUCTURES_INPUT = rb"""{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ { } ],
  "A": { }
}"""
STRUCTURES_OUTPUT = (
    rb'{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'
)


def test_rfc_sorting_example() -> None:
    assert canonicalize(RFC_SORTING_INPUT) == RFC_SORTING_OUTPUT
    assert jcs._serialize_slow(RFC_SORTING_INPUT).encode() == RFC_SORTING_OUTPUT


def test_python_key_order_differs_from_utf16_order_beyond_the_bmp() -> None:
    # Why astral keys leave the fast path: json's sort_keys puts U+FB33 before U+1F600.
    assert jcs._serialize_fast(RFC_SORTING_INPUT).encode() != RFC_SORTING_OUTPUT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RFC_VALUES_INPUT, RFC_VALUES_OUTPUT),
        (WEIRD_INPUT, WEIRD_OUTPUT),
        (STRUCTURES_INPUT, STRUCTURES_OUTPUT),
    ],
    ids=["rfc-values", "weird", "structures"],
)
def test_rfc_examples_parse_and_canonicalize_byte_identical(text: bytes, expected: bytes) -> None:
    value = loads(text)
    assert canonicalize(value) == expected
    assert loads_canonical(expected) == value


def test_rfc_numbers_example() -> None:
    numbers: list[JSONValue] = [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001]
    assert canonicalize(numbers) == b"[333333333.3333333,1e+30,4.5,0.002,1e-27]"


# --- numbers: ECMAScript Number.prototype.toString -----------------------------------------

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B, ids=[row[0] for row in APPENDIX_B])
def test_rfc_appendix_b_numbers(bits: str, expected: str) -> None:
    number: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonicalize(number) == expected.encode()
    # and the canonical text reads back as the same double
    assert loads_canonical(expected.encode()) == number


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.2345678901234568e20, "123456789012345680000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (1.5e-7, "1.5e-7"),
        (123e-20, "1.23e-18"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992, "9007199254740992"),
        (-9007199254740992, "-9007199254740992"),
        (9007199254740992.0, "9007199254740992"),
        (0.1, "0.1"),
        (100.0, "100"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
    ],
)
def test_number_and_literal_layout(value: JSONValue, expected: str) -> None:
    assert canonicalize(value) == expected.encode()
    assert jcs._serialize_slow(value) == expected


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        (b"100000000000000000000", 1e20),
        (b"295147905179352830000", 2.0**68),
        (b"-999999999999999900000", -999999999999999900000.0),
    ],
)
def test_large_integral_doubles_read_back_as_floats(literal: bytes, expected: float) -> None:
    # RFC 8785 writes these doubles in plain digits; reading them must not fail or change them.
    value = loads_canonical(literal)
    assert type(value) is float
    assert value == expected


# --- strings ------------------------------------------------------------------------------

SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
CONTROL_CASES = [(chr(code), SHORT_ESCAPES.get(code, f"\\u{code:04x}")) for code in range(0x20)]


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        *CONTROL_CASES,
        ('"', '\\"'),
        ("\\", "\\\\"),
        ("/", "/"),
        ("\u007f", "\u007f"),
        ("\u0080", "\u0080"),
        ("\u2028", "\u2028"),
        ("\u2029", "\u2029"),
        ("\ufeff", "\ufeff"),
        ("\U0001f600", "\U0001f600"),
    ],
    ids=lambda case: f"U+{ord(case):04X}" if len(case) == 1 else None,
)
def test_string_escaping_on_both_paths(char: str, escaped: str) -> None:
    expected = f'"a{escaped}z"'.encode()
    assert canonicalize(f"a{char}z") == expected
    assert jcs._serialize_fast(f"a{char}z").encode() == expected
    assert jcs._serialize_slow(f"a{char}z").encode() == expected
    assert canonicalize({f"a{char}z": 1}) == b"{" + expected + b":1}"


# --- rejections by canonicalize -------------------------------------------------------------


class Level(IntEnum):
    LOW = 1


def nested_lists(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"body": {"x": [0, 1, 2, math.nan]}}, "float nan is not a finite number at $.body.x[3]"),
        ([math.inf], "float inf is not a finite number at $[0]"),
        ({"a b": -math.inf}, 'float -inf is not a finite number at $["a b"]'),
        ({"n": MAX_SAFE_INTEGER + 1}, "integer 9007199254740993 is beyond +-2**53"),
        ([-MAX_SAFE_INTEGER - 1], "integer -9007199254740993 is beyond +-2**53"),
        ({"s": "ab\ud800"}, "string contains a lone surrogate U+D800 at $.s"),
        (["\udc00\ud83d"], "string contains a lone surrogate U+DC00 at $[0]"),
        ({"k\udfff": 1}, 'object key contains a lone surrogate U+DFFF at $["k\\udfff"]'),
        ({"a": {1: "x"}}, "object key 1 is int, not str at $.a"),
        ({None: "x"}, "object key None is NoneType, not str at $"),
        ({("t",): "x"}, "is tuple, not str"),
        (b"bytes", "bytes is not a JSON type at $"),
        ({"t": (1, 2)}, "tuple is not a JSON type at $.t"),
        ([{1, 2}], "set is not a JSON type at $[0]"),
        ([Level.LOW], "Level is not a JSON type at $[0]"),
        (OrderedDict(a=1), "OrderedDict is not a JSON type"),
        (nested_lists(MAX_DEPTH + 1), f"nesting deeper than {MAX_DEPTH} at $[0]"),
    ],
)
def test_canonicalize_rejects(value: Any, message: str) -> None:
    with pytest.raises(CanonicalJSONError) as caught:
        canonicalize(value)
    assert message in str(caught.value)


def test_canonicalize_accepts_the_limits() -> None:
    limits: list[JSONValue] = [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]
    assert canonicalize(limits) == b"[9007199254740992,-9007199254740992]"
    assert canonicalize(nested_lists(MAX_DEPTH)) == b"[" * MAX_DEPTH + b"]" * MAX_DEPTH


def test_canonicalize_rejects_cycles_as_too_deep() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(CanonicalJSONError, match="nesting deeper than"):
        canonicalize(cycle)


def test_canonicalize_very_deep_value_is_an_error_not_recursion() -> None:
    with pytest.raises(CanonicalJSONError, match="nesting deeper than"):
        canonicalize(nested_lists(100_000))


# --- rejections by loads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "invalid JSON: Expecting value"),
        (b"{", "invalid JSON"),
        (b"[1,]", "invalid JSON"),
        (b"{'a': 1}", "invalid JSON"),
        (b"01", "invalid JSON: Extra data"),
        (b"1 2", "invalid JSON: Extra data"),
        (b'"tab\there"', "invalid JSON: Invalid control character"),
        (b'{"a":1,"a":2}', 'duplicate object key "a"'),
        (b'[{"x":{"b":1,"c":2,"b":3}}]', 'duplicate object key "b"'),
        (b'{"a":1,"\\u0061":2}', 'duplicate object key "a"'),
        (b"NaN", "NaN is not a JSON number"),
        (b"[Infinity]", "Infinity is not a JSON number"),
        (b'{"x":-Infinity}', "-Infinity is not a JSON number"),
        (b"9007199254740993", "integer 9007199254740993 is beyond +-2**53"),
        (b"-9007199254740993", "integer -9007199254740993 is beyond +-2**53"),
        (b"100000000000000000001", "would lose precision"),
        (b"1000000000000000000000", "would lose precision"),
        (b"1" + b"0" * 5000, "would lose precision"),
        (b"[1e400]", "number 1e400 overflows a double"),
        (b"-1E+400", "number -1E+400 overflows a double"),
        (b'["\\ud800"]', "string contains a lone surrogate U+D800 at $[0]"),
        (b'{"a":"\\ude00\\ud83d"}', "string contains a lone surrogate U+DE00 at $.a"),
        (b'{"\\udbff":1}', "object key contains a lone surrogate U+DBFF"),
        (b'"\xed\xa0\x80"', "invalid UTF-8 at byte 1"),
        (b'"\xff"', "invalid UTF-8 at byte 1"),
        (b'"\xc3"', "invalid UTF-8 at byte 1"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        ("\ufeff{}", "byte order mark"),
        ('["\ud800"]', "string contains a lone surrogate U+D800 at $[0]"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"nesting deeper than {MAX_DEPTH}"),
        (b"[" * 100_000, f"nesting deeper than {MAX_DEPTH} at char {MAX_DEPTH}"),
        ("[" * 100_000, f"nesting deeper than {MAX_DEPTH}"),
        (b'{"a":' * 100_000, f"nesting deeper than {MAX_DEPTH}"),
        (bytearray(b"{}"), "must be bytes or str, not bytearray"),
    ],
)
def test_loads_rejects(data: Any, message: str) -> None:
    with pytest.raises(CanonicalJSONError) as caught:
        loads(data)
    assert message in str(caught.value)


def test_loads_accepts_the_limits() -> None:
    deepest = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert canonicalize(loads(deepest)) == deepest
    assert loads(b"[9007199254740992,-9007199254740992]") == [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]
    assert loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a paired escape is fine


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '["' + "[{" * 100 + '\\"[", "]]]"]'
    assert loads(text) == ["[{" * 100 + '"[', "]]]"]


# --- loads_canonical --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}',
        b' {"a":1}',
        b'{"a":1}\n',
        b'{"b":1,"a":2}',
        b"1.0",
        b"1E3",
        b"-0",
        b"0.10",
        b'"\\u0041"',
        b'"\\/"',
        b'"\\u001F"',
        b'"\\u2028"',
        b'"\\ud83d\\ude00"',
        '{"\ufb33":1,"\U0001f600":2}'.encode(),
    ],
)
def test_loads_canonical_rejects_other_spellings(data: bytes) -> None:
    with pytest.raises(CanonicalJSONError, match="not in RFC 8785 canonical form"):
        loads_canonical(data)


def test_loads_canonical_names_first_difference() -> None:
    with pytest.raises(CanonicalJSONError, match="first difference at byte 5"):
        loads_canonical(b'{"a": 1}')


def test_loads_canonical_requires_bytes() -> None:
    text: Any = '{"a":1}'
    with pytest.raises(CanonicalJSONError, match="must be bytes, not str"):
        loads_canonical(text)


def test_module_surface() -> None:
    assert sorted(jcs.__all__) == sorted(
        ["JSONValue", "MAX_DEPTH", "MAX_SAFE_INTEGER", "canonicalize", "loads", "loads_canonical"]
    )
    assert MAX_SAFE_INTEGER == 2**53
    assert MAX_DEPTH == 64


# --- properties -------------------------------------------------------------------------------

safe_integers = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]))


def json_values(scalars: st.SearchStrategy[JSONValue], keys: st.SearchStrategy[str]) -> Any:
    def containers(children: Any) -> Any:
        return st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5)

    return st.recursive(scalars, containers, max_leaves=25)


all_values = json_values(
    st.none() | st.booleans() | safe_integers | finite_floats | st.text(), st.text()
)
# What the C encoder may write: no floats, no object keys beyond the BMP.
fast_values = json_values(st.none() | st.booleans() | safe_integers | st.text(), bmp_text)


@settings(deadline=None)
@given(all_values)
def test_round_trip(value: JSONValue) -> None:
    canonical = canonicalize(value)
    assert loads(canonical) == value
    assert loads_canonical(canonical) == value
    assert canonicalize(loads_canonical(canonical)) == canonical
    assert jcs._serialize_slow(value).encode() == canonical


@settings(deadline=None)
@given(fast_values)
def test_fast_path_equals_slow_path(value: JSONValue) -> None:
    assert jcs._serialize_fast(value) == jcs._serialize_slow(value)


@example([0.0, 0.5])
@example({"a": 20.0, "b": 1e-3, "c": [3, 1e300]})
@given(json_values(st.floats(allow_nan=False, allow_infinity=False) | safe_integers, bmp_text))
def test_every_path_equals_the_rule_by_rule_serializer(value: JSONValue) -> None:
    path = jcs._check(value, 0)  # noqa: SLF001
    assert jcs._serialize(value, path) == jcs._serialize_slow(value).encode()  # noqa: SLF001


@settings(deadline=None)
@given(st.dictionaries(st.text(), safe_integers | st.text(), max_size=8), st.randoms())
def test_member_order_does_not_matter(members: dict[str, JSONValue], rng: Any) -> None:
    items = list(members.items())
    rng.shuffle(items)
    assert canonicalize(dict(items)) == canonicalize(members)


@given(finite_floats)
def test_every_finite_double_round_trips_exactly(number: float) -> None:
    assert loads_canonical(canonicalize(number)) == number  # -0.0 comes back as 0, equal


@given(st.floats(min_value=1e-4, max_value=1e16, allow_nan=False, allow_infinity=False)
       | st.floats(min_value=-1e16, max_value=-1e-4))
def test_floats_taking_the_c_encoder_match_the_rfc_rules(number: float) -> None:
    path = jcs._check(number, 0)  # noqa: SLF001
    assert jcs._serialize(number, path) == jcs._serialize_slow(number).encode()  # noqa: SLF001
    if not number.is_integer() and abs(number) < 1e16:
        assert path == jcs._FAST  # noqa: SLF001
    if number.is_integer() and abs(number) <= 2**53:
        assert path == jcs._AS_INT  # noqa: SLF001
