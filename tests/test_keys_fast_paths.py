"""The fast paths of app/domain/keys.py give exactly what the full rules give: canonical_json
(Python's C encoder for plain JSON) the bytes of the full RFC 8785 writer, a field's AAD its
canonical JSON, opening the value the full reader reads, and base64url decoding the same
refusals. Sealed values, AADs and keyed hashes written before them still open and match."""

from __future__ import annotations

import json

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import keys

SAFE = 2**53 - 1
scalars = (st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.integers() | st.text()
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=30)


def full_jcs(value: object) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(keys._nfc(value))
    except (ValueError, TypeError) as exc:
        return type(exc)


def fast_jcs(value: object) -> bytes | type[Exception]:
    try:
        return keys.canonical_json(value)
    except (ValueError, TypeError) as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(values)
def test_the_fast_path_writes_the_bytes_of_the_full_jcs_writer(value: object) -> None:
    assert fast_jcs(value) == full_jcs(value)


def test_the_cases_where_python_and_jcs_differ_take_the_full_writer() -> None:
    assert keys.canonical_json({"\U0001f600": 1, "\ufb01": 2}) == rfc8785.dumps({"\U0001f600": 1, "\ufb01": 2})
    assert keys.canonical_json([1.0, 1e21, 2**53 - 1]) == b"[1,1e+21,9007199254740991]"
    assert keys.canonical_json("\x00\x1f\x7f\u2028\"\\\b\t") == b'"\\u0000\\u001f\x7f\xe2\x80\xa8\\"\\\\\\b\\t"'
    for bad in (2**53, "\ud800", {"a": float("nan")}):
        assert fast_jcs(bad) == full_jcs(bad) and isinstance(full_jcs(bad), type)


def test_an_aad_is_the_same_bytes_as_before() -> None:
    assert keys.canonical_json(["dreamtree-field/1", "kid", "exercise_responses", "row-1", ""]) == (
        b'["dreamtree-field/1","kid","exercise_responses","row-1",""]')


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[A-Za-z0-9_-]{22}", fullmatch=True), st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
       st.text(min_size=1, max_size=40), st.sampled_from(["", "/a", "/a~1b"]))
def test_a_field_aad_written_directly_is_its_canonical_json(kid: str, table: str, row_id: str, pointer: str) -> None:
    expected = keys.canonical_json(["dreamtree-field/1", kid, table, row_id, pointer])
    assert keys._field_aad(kid, table, row_id, pointer) == expected


@settings(max_examples=200, deadline=None)
@given(values)
def test_a_sealed_value_opens_to_what_the_full_reader_reads(value: object) -> None:
    dek = keys.new_data_key()
    try:
        sealed = keys.seal_document(dek, value, table="tool_instances", row_id="r1")
    except (ValueError, TypeError):
        return
    opened = keys.open_document(dek, sealed, table="tool_instances", row_id="r1")
    full = json.loads(keys.canonical_json(value), parse_int=keys._parse_int)  # the sealed bytes, read in full
    assert typed(opened) == typed(full)


def typed(value: object) -> object:
    """The value with every number's type beside it: 1 and 1.0 differ here."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def test_a_number_written_with_16_digits_or_more_opens_as_a_float() -> None:
    """A float such as 1e16 is sealed as its digits; opening gives the float back."""
    dek = keys.new_data_key()
    sealed = keys.seal_document(dek, {"n": 1e16, "m": 12}, table="tool_instances", row_id="r1")
    opened = keys.open_document(dek, sealed, table="tool_instances", row_id="r1")
    assert opened == {"n": 1e16, "m": 12} and isinstance(opened["n"], float) and isinstance(opened["m"], int)


def old_b64u_decode(text: str) -> bytes | None:
    """The decoder's rule as first written: decode, then the bytes must encode back to the text."""
    import base64
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if keys.b64u_encode(data) == text else None


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ", max_size=12))
def test_base64url_is_refused_exactly_when_it_does_not_encode_back(text: str) -> None:
    try:
        new: bytes | None = keys.b64u_decode(text)
    except ValueError:
        new = None
    assert new == old_b64u_decode(text)


@settings(max_examples=200, deadline=None)
@given(values)
def test_what_is_sealed_or_hashed_from_its_canonical_bytes_is_what_the_value_gives(value: object) -> None:
    """A caller that already has a value's canonical bytes (its size was measured) seals and
    hashes those: the envelope opens to the same value, and the hash is the value's."""
    if not isinstance(fast_jcs(value), bytes):
        return  # not JSON that can be kept: refused before anything is sealed
    dek = keys.new_data_key()
    canonical = keys.canonical_json(value)
    column = keys.seal_column_of(dek, canonical, table="tool_instances", row_id="r1")
    assert keys.open_column(dek, column, table="tool_instances", row_id="r1") == \
        keys.open_column(dek, keys.seal_column(dek, value, table="tool_instances", row_id="r1"),
                         table="tool_instances", row_id="r1")
    assert keys.content_hash_of(dek, canonical) == keys.content_hash(dek, value)


def test_a_data_key_keeps_one_cipher_that_seals_with_a_new_nonce_each_time() -> None:
    dek = keys.new_data_key()
    first = json.loads(keys.seal_column(dek, "same", table="t", row_id="r"))
    cipher = dek._cipher
    second = json.loads(keys.seal_column(dek, "same", table="t", row_id="r"))
    assert dek._cipher is cipher and first["n"] != second["n"] and first["c"] != second["c"]
    assert keys.open_document(dek, first, table="t", row_id="r") == "same"
    assert "key=<redacted>" in repr(dek)
