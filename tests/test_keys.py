"""app.domain.keys: the negative tests of the key hierarchy (docs/security.md: wrong
password, tampered or swapped blobs, wrong associated data, downgraded KDF parameters),
plus cookies, recovery codes, password change and export. Argon2 runs with FAST parameters except
where a test checks which parameters a default picks (there the KDF is spied on, not run)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import time
import unicodedata
import uuid
from typing import Any

import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.domain import keys as k
from app.domain.keys import (
    Argon2Params,
    BadCookie,
    BadParameters,
    CryptoFailure,
    DataKey,
    SealBroken,
    WrongPassword,
    WrongRecoveryCode,
)

pytestmark = pytest.mark.both_engines

FAST = Argon2Params.FAST
SECRET = bytes(range(32))
PEPPER = k.server_subkey(SECRET, "pepper:p1")
COOKIE_KEY = k.server_subkey(SECRET, "cookie")
USER_A = "0b9e5c1a-7f7e-4a57-9a8e-5a0f8c2b1d3e"
USER_B = "6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PASSWORD = "correct horse battery staple"
TABLE, ROW = "exercise_responses", "7d3f6a58-8a0b-4a53-9d8c-2b51c3d7e901"
HYP = settings(database=None, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hkdf(ikm: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def claim(dek: DataKey, user_id: str = USER_A, password: str = PASSWORD) -> tuple[str, str, str]:
    return k.claim_keys(dek, user_id=user_id, password=password, pepper=PEPPER, pepper_id="p1", params=FAST)


def unlock(user_id: str, password: str, password_hash: str, wrapped: str) -> DataKey:
    return k.unlock_with_password(
        user_id=user_id, password=password, password_hash=password_hash, wrapped_data_key=wrapped, pepper=PEPPER
    )


@pytest.fixture(scope="module")
def account() -> tuple[DataKey, str, str, str]:
    dek = k.new_data_key()
    return (dek, *claim(dek))


class AesSpy:
    """Counts AES-GCM constructions in keys.py: proves a check ran before any decryption."""

    calls = 0

    def __init__(self, key: bytes) -> None:
        type(self).calls += 1
        self._aead = AESGCM(key)

    def encrypt(self, *args: Any) -> bytes:
        return self._aead.encrypt(*args)

    def decrypt(self, *args: Any) -> bytes:
        return self._aead.decrypt(*args)


@pytest.fixture
def aes_spy(monkeypatch: pytest.MonkeyPatch) -> type[AesSpy]:
    AesSpy.calls = 0
    monkeypatch.setattr(k, "AESGCM", AesSpy)
    return AesSpy


@pytest.fixture
def kdf_spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Records (m, t, p) of every Argon2 run and returns a cheap stand-in (SHA-256) instead of hashing."""
    calls: list[tuple[int, int, int]] = []

    def fake(secret: bytes, salt: bytes, time_cost: int, memory_cost: int, parallelism: int, hash_len: int,
             type: Type) -> bytes:  # fmt: skip
        assert (hash_len, type) == (32, Type.ID)
        calls.append((memory_cost, time_cost, parallelism))
        return hashlib.sha256(secret + salt).digest()

    monkeypatch.setattr(k, "hash_secret_raw", fake)
    return calls


# --- data keys, canonical JSON, base64 ----------------------------------------------------------


def test_data_key_shape_and_redaction() -> None:
    dek = k.new_data_key()
    assert len(dek.kid) == 22 and len(b64d(dek.kid)) == 16
    assert dek != k.new_data_key() and dek == DataKey(dek._key, dek.kid)
    for text in (repr(dek), str(dek), f"{dek}"):
        assert dek._key.hex() not in text and k.b64u_encode(dek._key) not in text and dek.kid in text
    assert dek.dedup_key == hkdf(dek._key, None, b"dreamtree/v1/dedup") and dek.dedup_key is dek.dedup_key
    with pytest.raises(TypeError):
        pickle.dumps(dek)
    with pytest.raises(ValueError):
        DataKey(b"short", dek.kid)
    with pytest.raises(ValueError):
        DataKey(dek._key, "not-a-kid")


def test_canonical_json_is_jcs_over_nfc() -> None:
    assert k.canonical_json({"b": [1, 2.5, None, True], "a": "x"}) == b'{"a":"x","b":[1,2.5,null,true]}'
    assert k.canonical_json(1e21) == b"1e+21" and k.canonical_json(1.0) == b"1"
    nfd = unicodedata.normalize("NFD", "Zoë")
    assert k.canonical_json({nfd: nfd}) == k.canonical_json({"Zoë": "Zoë"})
    with pytest.raises(ValueError):
        k.canonical_json({nfd: 1, "Zoë": 2})
    for bad in (float("nan"), 2**60, {1: "x"}, {"s": {1, 2}}):
        with pytest.raises((ValueError, TypeError)):
            k.canonical_json(bad)


def test_base64_decoding_is_strict() -> None:
    assert k.b64u_decode("AAE") == b"\x00\x01"
    for bad in ("AAE=", "AAF", "AA+/", "A", "AA E", "ÀÀÀÀ", 12):
        with pytest.raises(ValueError):
            k.b64u_decode(bad)
    with pytest.raises(ValueError):
        k.b64u_decode("AAAA", length=2)


def test_server_subkeys_are_independent() -> None:
    purposes = ["cookie", "pepper:p1", "pepper:p2", "csrf", "throttle"]
    derived = {k.server_subkey(SECRET, p) for p in purposes}
    assert len(derived) == len(purposes) and all(len(d) == 32 for d in derived)
    assert k.server_subkey(SECRET, "cookie") == COOKIE_KEY != k.server_subkey(bytes(32), "cookie")
    with pytest.raises(ValueError):
        k.server_subkey(b"short", "cookie")


# --- §7.1 field envelopes ----------------------------------------------------------------------


def seal(dek: DataKey, value: Any, row: str = ROW, table: str = TABLE, pointer: str = "") -> dict[str, str]:
    return k.seal_value(dek, value, table=table, row_id=row, pointer=pointer)


def open_(dek: DataKey, env: Any, row: str = ROW, table: str = TABLE, pointer: str = "") -> Any:
    return k.open_value(dek, env, table=table, row_id=row, pointer=pointer)


def test_round_trip_and_document_wrappers() -> None:
    dek = k.new_data_key()
    doc = {"answers": {"q1": "I want to teach", "rating": 4}, "done": True}
    env = k.seal_document(dek, doc, table="tool_instances", row_id=ROW)
    assert env.keys() == {"$enc", "k", "n", "c"} and env["$enc"] == "dt1" and env["k"] == dek.kid
    assert k.is_envelope(env) and not k.is_envelope(doc) and not k.is_envelope({**env, "x": "y"})
    assert k.open_document(dek, env, table="tool_instances", row_id=ROW) == doc
    assert k.open_value(dek, env, table="tool_instances", row_id=ROW, pointer="") == doc


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function, not a lambda: hypothesis looks for the use of the argument in the
    # extend function's source, and what it finds for a lambda in the middle of a multi-line
    # call is not always the lambda's own text. Without the use it warns of a deprecation,
    # an error under the project's warning filters.
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    _nested,
    max_leaves=12,
)  # fmt: skip


@settings(HYP, max_examples=100)
@given(json_values)
def test_any_json_value_round_trips(value: Any) -> None:
    dek = DataKey(bytes(32), "AAAAAAAAAAAAAAAAAAAAAA")
    assume(all(unicodedata.is_normalized("NFC", s) for s in _strings(value)))
    assert k.canonical_json(open_(dek, seal(dek, value, pointer="/a"), pointer="/a")) == k.canonical_json(value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_1_any_flipped_bit_fails_and_leaks_nothing() -> None:
    dek = k.new_data_key()
    canary = "canary-7f3a9 my boss is awful"
    env = seal(dek, canary)
    for field in ("n", "c"):
        raw = b64d(env[field])
        for bit in range(len(raw) * 8):
            mutated = bytearray(raw)
            mutated[bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(SealBroken) as caught:
                open_(dek, {**env, field: k.b64u_encode(bytes(mutated))})
            message = str(caught.value)
            assert canary not in message and env["c"] not in message and env["n"] not in message
            assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_2_envelope_moved_to_another_row_table_or_path_fails() -> None:
    dek = k.new_data_key()
    env = seal(dek, {"text": "hello"}, pointer="/answers")
    assert open_(dek, env, pointer="/answers") == {"text": "hello"}
    for row, table, pointer in [
        ("another-row", TABLE, "/answers"),
        (ROW, "tool_instances", "/answers"),
        (ROW, TABLE, "/notes"),
        (ROW, TABLE, ""),
    ]:
        with pytest.raises(SealBroken):
            open_(dek, env, row=row, table=table, pointer=pointer)


def test_3_kid_mismatch_is_detected_before_aes(aes_spy: type[AesSpy]) -> None:
    dek_a, dek_b = k.new_data_key(), k.new_data_key()
    env = seal(dek_a, "A's answer")
    aes_spy.calls = 0
    with pytest.raises(SealBroken, match="another key"):
        open_(dek_b, env)
    assert aes_spy.calls == 0
    impostor = DataKey(os.urandom(32), dek_a.kid)  # B's key material under A's kid: the tag fails
    with pytest.raises(SealBroken, match="authentication"):
        open_(impostor, env)
    assert aes_spy.calls == 1


@pytest.mark.parametrize("stored", ["plain text", {"answers": "plain"}, None, 42, [], {"$enc": "dt1"},
                                    {"$enc": "dt1", "k": 1, "n": "x", "c": "y"}])  # fmt: skip
def test_4_plaintext_at_an_encrypted_path_is_refused(stored: Any) -> None:
    with pytest.raises(SealBroken, match="expected an encrypted value"):
        k.open_document(k.new_data_key(), stored, table=TABLE, row_id=ROW)


def test_5_unknown_version_oversized_or_noncanonical_rejected_without_aes(aes_spy: type[AesSpy]) -> None:
    dek = k.new_data_key()
    env = seal(dek, "value")
    aes_spy.calls = 0
    c_raw = b64d(env["c"])
    noncanonical = env["c"][:-1] + chr(ord(env["c"][-1]) + 1) if len(c_raw) % 3 else env["c"] + "="
    assert b64d(noncanonical) == c_raw  # a second spelling of the same bytes
    for bad in [
        {**env, "$enc": "dt2"},
        {**env, "$enc": "wbk1"},
        {**env, "c": "A" * 1_400_000},
        {**env, "c": noncanonical},
        {**env, "c": env["c"] + "=="},
        {**env, "n": env["n"] + "AA"},
        {**env, "c": "AAAA"},  # shorter than a tag
    ]:
        with pytest.raises(SealBroken):
            open_(dek, bad)
    assert aes_spy.calls == 0
    with pytest.raises(ValueError):
        seal(dek, "x" * (1 << 20))


def test_6_nonces_never_repeat() -> None:
    dek = k.new_data_key()
    first, second = seal(dek, "same"), seal(dek, "same")
    assert first["n"] != second["n"] and first["c"] != second["c"]
    nonces = {seal(dek, 1)["n"] for _ in range(100_000)}
    assert len(nonces) == 100_000


def test_7_content_hash_dedups_per_user_only() -> None:
    a, b = k.new_data_key(), k.new_data_key()
    content = json.loads('{"title": "My values", "items": ["family", "craft"], "score": 2.5}')
    respaced = json.loads('{ "score":2.50,\n "items" : ["family","craft"], "title":"My values" }')
    h = k.content_hash(a, content)
    assert len(h) == 64 and int(h, 16) >= 0
    assert k.content_hash(a, respaced) == h == k.content_hash(a, dict(reversed(list(content.items()))))
    assert k.content_hash(a, {"t": unicodedata.normalize("NFD", "é")}) == k.content_hash(a, {"t": "é"})
    assert k.content_hash(b, content) != h
    assert k.content_hash(a, {**content, "score": 3}) != h


def test_8_content_hash_is_not_a_bare_sha256() -> None:
    dek = k.new_data_key()
    for content in ["yes", {"a": 1}, [], ""]:
        h = k.content_hash(dek, content)
        assert h != hashlib.sha256(k.canonical_json(content)).hexdigest()
        assert h != hashlib.sha256(json.dumps(content).encode()).hexdigest()


# --- passwords and key slots (§7.2) --------------------------------------------------------------


def test_claim_then_unlock(account: tuple[DataKey, str, str, str]) -> None:
    dek, password_hash, wrapped, code = account
    assert password_hash.startswith("$dt-a2id-hkdf$v=1$k=p1,m=19456,t=2,p=1$")
    slots = json.loads(wrapped)
    assert slots["v"] == 1 and slots["active"] == dek.kid
    assert [s["t"] for s in slots["keys"][dek.kid]["slots"]] == ["pw", "rk"]
    assert slots["keys"][dek.kid]["slots"][0]["kdf"]["salt"] == password_hash.split("$")[4]
    assert unlock(USER_A, PASSWORD, password_hash, wrapped) == dek
    nfkc_twin = "correct horse battery ｓｔａｐｌｅ"  # fullwidth letters normalise to ASCII
    assert unlock(USER_A, nfkc_twin, password_hash, wrapped) == dek
    for secret in (dek._key.hex(), k.b64u_encode(dek._key), PASSWORD):
        assert secret not in password_hash + wrapped


def test_9_wrong_password_and_a_forged_verifier_both_fail(account: tuple[DataKey, str, str, str]) -> None:
    dek, password_hash, wrapped, _ = account
    with pytest.raises(WrongPassword) as caught:
        unlock(USER_A, PASSWORD + "!", password_hash, wrapped)
    assert str(caught.value) == "wrong password"
    # password_hash replaced by one for a password the attacker knows (same salt, valid verifier):
    # the verifier now matches, but the pw slot still refuses.
    parsed = k._PasswordHash.parse(password_hash)
    master = k._argon2("attacker's password!", parsed.salt, parsed.params)
    forged_verifier = hkdf(master, PEPPER, b"dreamtree/v1/verifier|" + USER_A.encode())
    forged = str(k._PasswordHash("p1", parsed.params, parsed.salt, forged_verifier))
    with pytest.raises(WrongPassword) as again:
        unlock(USER_A, "attacker's password!", forged, wrapped)
    assert str(again.value) == str(caught.value)


def _tamper(wrapped: str, edit: Any) -> str:
    data = json.loads(wrapped)
    edit(data, data["keys"][data["active"]]["slots"][0])
    return json.dumps(data)


def _flip_b64(text: str) -> str:
    raw = bytearray(b64d(text))
    raw[0] ^= 1
    return k.b64u_encode(bytes(raw))


TAMPERS = {
    "m": lambda d, pw: pw["kdf"].update(m=pw["kdf"]["m"] * 2),
    "pep": lambda d, pw: pw.update(pep="p2"),
    "type": lambda d, pw: pw.update(t="rk"),
    "nonce": lambda d, pw: pw.update(nonce=_flip_b64(pw["nonce"])),
    "ct": lambda d, pw: pw.update(ct=_flip_b64(pw["ct"])),
    "salt": lambda d, pw: pw["kdf"].update(salt=_flip_b64(pw["kdf"]["salt"])),
    "aead": lambda d, pw: pw.update(aead="A128GCM"),
    "extra": lambda d, pw: pw.update(x=1),
    "version": lambda d, pw: d.update(v=2),
    "active": lambda d, pw: d.update(active=k.new_data_key().kid),
    "kid": lambda d, pw: d["keys"].update({k.new_data_key().kid: d["keys"].pop(d["active"])}),
    "not json": lambda d, pw: d.update(v=float("nan")),
}


@pytest.mark.parametrize("what", TAMPERS)
def test_10_tampered_key_slots_fail_generically(account: tuple[DataKey, str, str, str], what: str) -> None:
    dek, password_hash, wrapped, _ = account
    with pytest.raises(WrongPassword, match="^wrong password$"):
        unlock(USER_A, PASSWORD, password_hash, _tamper(wrapped, TAMPERS[what]))
    assert unlock(USER_A, PASSWORD, password_hash, wrapped) == dek  # nothing was corrupted


def test_10_slot_aad_authenticates_the_metadata(account: tuple[DataKey, str, str, str]) -> None:
    """Below the consistency checks: with the right KEK, any edited metadata still fails the tag."""
    dek, password_hash, wrapped, _ = account
    parsed = k._PasswordHash.parse(password_hash)
    kek = hkdf(k._argon2(PASSWORD, parsed.salt, parsed.params), PEPPER, b"dreamtree/v1/kek-pw|" + USER_A.encode())
    slot = json.loads(wrapped)["keys"][dek.kid]["slots"][0]
    assert k._open_slot(kek, slot, USER_A, dek.kid) == dek
    for edited in [{**slot, "pep": "p2"}, {**slot, "t": "rk"}, {**slot, "kdf": {**slot["kdf"], "m": 65536}}]:
        with pytest.raises(InvalidTag):
            k._open_slot(kek, edited, USER_A, dek.kid)
    with pytest.raises(InvalidTag):
        k._open_slot(kek, slot, USER_B, dek.kid)


def test_11_auth_row_copied_to_another_user_fails(account: tuple[DataKey, str, str, str]) -> None:
    _, password_hash, wrapped, code = account
    with pytest.raises(WrongPassword):
        unlock(USER_B, PASSWORD, password_hash, wrapped)
    with pytest.raises(WrongRecoveryCode):
        k.unlock_with_recovery_code(user_id=USER_B, code=code, wrapped_data_key=wrapped)


def test_12_nothing_stored_is_usable_as_a_kek(account: tuple[DataKey, str, str, str]) -> None:
    dek, password_hash, wrapped, _ = account
    parsed = k._PasswordHash.parse(password_hash)
    slot = json.loads(wrapped)["keys"][dek.kid]["slots"][0]
    uid = USER_A.encode()
    candidates = [parsed.verifier, hkdf(parsed.verifier, None, b"dreamtree/v1/kek-pw|" + uid),
                  hkdf(parsed.verifier, PEPPER, b"dreamtree/v1/kek-pw|" + uid), hashlib.sha256(parsed.verifier).digest()]
    for kek in candidates:
        with pytest.raises(InvalidTag):
            k._open_slot(kek, slot, USER_A, dek.kid)


def test_db_only_attacker_cannot_check_a_password_guess(account: tuple[DataKey, str, str, str]) -> None:
    """Even the TRUE password is unconfirmable without the pepper (§7.3 item 18), recomputed here
    independently of keys.py from the public format."""
    dek, password_hash, wrapped, _ = account
    _, _, _, costs, salt_text, verifier_text = password_hash.split("$")
    m, t, p = (int(part.split("=")[1]) for part in costs.split(",")[1:])
    master = hash_secret_raw(PASSWORD.encode(), b64d(salt_text), t, m, p, 32, Type.ID)
    slot = json.loads(wrapped)["keys"][dek.kid]["slots"][0]
    aad = k.canonical_json(["dreamtree-slot/1", USER_A, dek.kid, {x: v for x, v in slot.items() if x not in ("nonce", "ct")}])
    for guessed_pepper in (None, b"", b"\x00" * 32, k.server_subkey(os.urandom(32), "pepper:p1")):
        verifier = hkdf(master, guessed_pepper, b"dreamtree/v1/verifier|" + USER_A.encode())
        assert verifier != b64d(verifier_text)
        kek = hkdf(master, guessed_pepper, b"dreamtree/v1/kek-pw|" + USER_A.encode())
        with pytest.raises(InvalidTag):
            AESGCM(kek).decrypt(b64d(slot["nonce"]), b64d(slot["ct"]), aad)
    # ...while with the pepper the same computation succeeds, so the recomputation above is faithful.
    assert hkdf(master, PEPPER, b"dreamtree/v1/verifier|" + USER_A.encode()) == b64d(verifier_text)
    with pytest.raises(WrongPassword):
        k.unlock_with_password(user_id=USER_A, password=PASSWORD, password_hash=password_hash,
                               wrapped_data_key=wrapped, pepper=k.server_subkey(os.urandom(32), "pepper:p1"))  # fmt: skip


def test_14_recovery_code_unlocks_and_reset_retires_it() -> None:
    dek = k.new_data_key()
    password_hash, wrapped, code = claim(dek)
    assert k.unlock_with_recovery_code(user_id=USER_A, code=code, wrapped_data_key=wrapped) == dek
    wrong = ("0" if code[0] != "0" else "1") + code[1:]
    with pytest.raises(WrongRecoveryCode):
        k.unlock_with_recovery_code(user_id=USER_A, code=wrong, wrapped_data_key=wrapped)
    new_hash, new_wrapped, new_code = k.reset_with_recovery_code(
        user_id=USER_A, code=code, new_password="a brand new passphrase", pepper=PEPPER, pepper_id="p1",
        wrapped_data_key=wrapped, params=FAST,
    )  # fmt: skip
    assert new_code != code and new_hash != password_hash
    assert k.unlock_with_recovery_code(user_id=USER_A, code=new_code, wrapped_data_key=new_wrapped) == dek
    assert unlock(USER_A, "a brand new passphrase", new_hash, new_wrapped) == dek
    with pytest.raises(WrongRecoveryCode):
        k.unlock_with_recovery_code(user_id=USER_A, code=code, wrapped_data_key=new_wrapped)
    with pytest.raises(WrongPassword):
        unlock(USER_A, PASSWORD, new_hash, new_wrapped)
    with pytest.raises(WrongRecoveryCode):
        k.reset_with_recovery_code(user_id=USER_A, code=code, new_password="x" * 15, pepper=PEPPER,
                                   pepper_id="p1", wrapped_data_key=new_wrapped, params=FAST)  # fmt: skip


def test_recovery_code_format_and_forgiving_parse() -> None:
    raw = bytes.fromhex("00112233445566778899aabbccddeeff")
    code = k.format_recovery_code(raw)
    assert len(code) == 31 and [len(g) for g in code.split("-")] == [5, 5, 5, 5, 5, 1]
    assert set(code) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ-")
    for typed in (code, code.lower(), code.replace("-", ""), code.replace("-", " "), f"  {code.lower()}\n",
                  " - ".join(code.replace("-", "")), code.replace("0", "o").replace("1", "l")):  # fmt: skip
        assert k.parse_recovery_code(typed) == raw
    for bad in ("", code[:-1], code + "0", code.replace(code[2], "U"), "Z" + code[1:], "!" * 26, None, "x" * 500):
        with pytest.raises(WrongRecoveryCode):
            k.parse_recovery_code(bad)


@HYP
@given(st.binary(min_size=16, max_size=16))
def test_recovery_code_round_trips(raw: bytes) -> None:
    assert k.parse_recovery_code(k.format_recovery_code(raw).lower()) == raw


def test_password_change_keeps_dek_and_recovery_slot(account: tuple[DataKey, str, str, str]) -> None:
    dek, password_hash, wrapped, code = account
    new_hash, new_wrapped = k.change_password(
        dek, user_id=USER_A, new_password="another long passphrase", pepper=PEPPER, pepper_id="p1",
        wrapped_data_key=wrapped, params=FAST,
    )  # fmt: skip
    old, new = json.loads(wrapped)["keys"][dek.kid]["slots"], json.loads(new_wrapped)["keys"][dek.kid]["slots"]
    assert [s for s in new if s["t"] == "rk"] == [s for s in old if s["t"] == "rk"]
    assert new_hash.split("$")[4] != password_hash.split("$")[4]  # fresh salt
    assert unlock(USER_A, "another long passphrase", new_hash, new_wrapped) == dek
    with pytest.raises(WrongPassword):
        unlock(USER_A, PASSWORD, new_hash, new_wrapped)
    assert k.unlock_with_recovery_code(user_id=USER_A, code=code, wrapped_data_key=new_wrapped) == dek
    with pytest.raises(SealBroken):
        k.change_password(k.new_data_key(), user_id=USER_A, new_password="x" * 15, pepper=PEPPER, pepper_id="p1",
                          wrapped_data_key=wrapped, params=FAST)  # fmt: skip


def test_needs_rehash() -> None:
    fast_hash = claim(k.new_data_key())[0]
    assert k.needs_rehash(fast_hash) and k.needs_rehash(fast_hash, Argon2Params.PRODUCTION)
    assert not k.needs_rehash(fast_hash, FAST)
    assert not k.needs_rehash(fast_hash, FAST, pepper_id="p1") and k.needs_rehash(fast_hash, FAST, pepper_id="p2")
    assert k.needs_rehash("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", FAST)
    assert k.pepper_id_of(fast_hash) == "p1"


def test_defaults_use_production_and_export_params(kdf_spy: list[tuple[int, int, int]]) -> None:
    dek = k.new_data_key()
    password_hash, wrapped, _ = k.claim_keys(dek, user_id=USER_A, password=PASSWORD, pepper=PEPPER, pepper_id="p1")
    assert kdf_spy == [(65536, 3, 4)] and "$k=p1,m=65536,t=3,p=4$" in password_hash
    k.change_password(dek, user_id=USER_A, new_password=PASSWORD, pepper=PEPPER, pepper_id="p1", wrapped_data_key=wrapped)
    slot = k.wrap_for_export(dek, password=PASSWORD, export_id="e1")
    assert kdf_spy == [(65536, 3, 4)] * 2 + [(131072, 3, 4)]
    assert (slot["kdf"]["m"], slot["kdf"]["t"], slot["kdf"]["p"]) == (131072, 3, 4)
    assert Argon2Params.PRODUCTION == Argon2Params(65536, 3, 4) and Argon2Params.FAST == Argon2Params(19456, 2, 1)
    assert not k.needs_rehash(password_hash)


def test_unknown_email_does_the_same_kdf_work(kdf_spy: list[tuple[int, int, int]]) -> None:
    password_hash, wrapped, _ = claim(k.new_data_key())  # FAST, via the spy (no real hashing)
    kdf_spy.clear()
    with pytest.raises(WrongPassword):
        unlock(USER_A, "a guess at someone's password", password_hash, wrapped)
    k.dummy_password_work("a guess at someone's password", FAST, PEPPER)
    assert kdf_spy == [(19456, 2, 1), (19456, 2, 1)]


OUT_OF_BOUNDS = [Argon2Params(4 * 1024 * 1024, 3, 4), Argon2Params(65536, 0, 4), Argon2Params(65536, 3, 64),
                 Argon2Params(1024, 3, 4), Argon2Params(65536, 11, 4), Argon2Params(True, 3, 4)]  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("params", OUT_OF_BOUNDS, ids=repr)
def test_16_out_of_bounds_params_refused_before_hashing(
    params: Argon2Params, account: tuple[DataKey, str, str, str], kdf_spy: list[tuple[int, int, int]]
) -> None:
    dek, password_hash, wrapped, _ = account
    with pytest.raises(BadParameters):
        params.check_bounds()
    with pytest.raises(BadParameters):
        k.claim_keys(dek, user_id=USER_A, password=PASSWORD, pepper=PEPPER, pepper_id="p1", params=params)
    # The same parameters written into a stored row (hash and slot agree) and into an import file.
    costs = f"m={params.m},t={params.t},p={params.p}"
    bad_hash = password_hash.replace("m=19456,t=2,p=1", costs)
    bad_wrapped = _tamper(wrapped, lambda d, pw: pw["kdf"].update(m=params.m, t=params.t, p=params.p))
    export = k.wrap_for_export(dek, password=PASSWORD, export_id="e1", params=FAST)
    export["kdf"].update(m=params.m, t=params.t, p=params.p)
    kdf_spy.clear()
    started = time.perf_counter()
    with pytest.raises(WrongPassword):
        unlock(USER_A, PASSWORD, bad_hash, bad_wrapped)
    with pytest.raises(BadParameters):
        k.unwrap_export(export, password=PASSWORD, export_id="e1")
    assert time.perf_counter() - started < 0.05
    assert kdf_spy == []


# Inside BOUNDS, but not a cost this service writes: an import file naming one is refused.
UNWRITTEN = [Argon2Params(1024 * 1024, 10, 8), Argon2Params(1024 * 1024, 3, 4), Argon2Params(131072, 10, 4),
             Argon2Params(131072, 3, 8), Argon2Params(262144, 3, 4), Argon2Params(131072, 3, 1),
             Argon2Params(65536, 3, 1), Argon2Params(19456, 10, 1)]  # fmt: skip


@pytest.mark.parametrize("params", UNWRITTEN, ids=repr)
def test_import_slots_only_open_at_the_costs_this_service_writes(
    params: Argon2Params, account: tuple[DataKey, str, str, str], kdf_spy: list[tuple[int, int, int]]
) -> None:
    dek = account[0]
    params.check_bounds()  # in bounds: the profile check is what refuses it
    export = k.wrap_for_export(dek, password=PASSWORD, export_id="e1", params=FAST)
    export["kdf"].update(m=params.m, t=params.t, p=params.p)
    kdf_spy.clear()
    with pytest.raises(BadParameters):
        k.check_export_slot(export)
    with pytest.raises(BadParameters):
        k.unwrap_export(export, password=PASSWORD, export_id="e1")
    assert kdf_spy == []


@pytest.mark.parametrize("params", [Argon2Params.EXPORT, Argon2Params.PRODUCTION, Argon2Params.FAST], ids=repr)
def test_import_slots_at_a_written_cost_open(params: Argon2Params, kdf_spy: list[tuple[int, int, int]]) -> None:
    dek = k.new_data_key()
    export = k.wrap_for_export(dek, password=PASSWORD, export_id="e1", params=params)
    assert k.check_export_slot(export) == params
    assert k.unwrap_export(export, password=PASSWORD, export_id="e1") == dek
    assert k.FILE_KDF_PROFILES == {Argon2Params.EXPORT, Argon2Params.PRODUCTION, Argon2Params.FAST}


def test_export_default_params_are_bounds_checked_on_read() -> None:
    Argon2Params.PRODUCTION.check_bounds()
    Argon2Params.FAST.check_bounds()
    Argon2Params.EXPORT.check_bounds()
    assert Argon2Params.EXPORT == Argon2Params(131072, 3, 4)


# --- session cookies -----------------------------------------------------------------------------

DEK_C = DataKey(bytes(range(100, 132)), "c29tZS1raWQtZm9yLXRlcw")
TOKEN_C = bytes(range(32))
COOKIE_C = k.seal_cookie(COOKIE_KEY, TOKEN_C, user_id=USER_A, dek=DEK_C)


def test_cookie_round_trip_and_shape() -> None:
    token = k.new_session_token()
    assert len(token) == 32 and token != k.new_session_token()
    cookie = k.seal_cookie(COOKIE_KEY, token, user_id=USER_A, dek=DEK_C)
    assert cookie.isascii() and len(cookie) < 4096 and cookie.startswith("v1.")
    assert cookie.split(".")[1:4] == [k.b64u_encode(token), USER_A, DEK_C.kid]
    got_token, sid, dek, user_id = k.open_cookie(COOKIE_KEY, cookie)
    assert (got_token, sid, dek, user_id) == (token, k.session_id(token), DEK_C, USER_A)
    assert k.b64u_encode(DEK_C._key) not in cookie and DEK_C._key.hex() not in cookie


def test_session_id_is_uuid8_of_a_hash() -> None:
    sid = k.session_id(TOKEN_C)
    parsed = uuid.UUID(sid)
    assert str(parsed) == sid and parsed.version == 8 and parsed.variant == uuid.RFC_4122
    assert TOKEN_C.hex()[:8] not in sid.replace("-", "") and sid != k.session_id(bytes(32))
    with pytest.raises(ValueError):
        k.session_id(b"short")


def test_cookie_forgeries_are_bad_cookies() -> None:
    other = k.seal_cookie(COOKIE_KEY, k.new_session_token(), user_id=USER_A, dek=DEK_C)
    v, token, user, kid, blob = COOKIE_C.split(".")
    forged = [
        ".".join((v, token, user, kid, other.split(".")[4])),  # sealed DEK spliced from another session
        ".".join((v, token, USER_B, kid, blob)),  # session re-pointed to another user
        ".".join((v, token, user, k.new_data_key().kid, blob)),  # relabelled key
        ".".join(("v2", token, user, kid, blob)),
        ".".join((v, other.split(".")[1], user, kid, blob)),
        COOKIE_C + ".",
        COOKIE_C + "=",
        "",
    ]
    for cookie in forged:
        with pytest.raises(BadCookie):
            k.open_cookie(COOKIE_KEY, cookie)
    with pytest.raises(BadCookie):
        k.open_cookie(k.server_subkey(os.urandom(32), "cookie"), COOKIE_C)
    for bad in (COOKIE_C.encode(), None, 42):
        with pytest.raises(BadCookie):
            k.open_cookie(COOKIE_KEY, bad)


def test_every_single_bit_flip_and_truncation_is_refused() -> None:
    raw = COOKIE_C.encode()
    variants = {raw[:i] for i in range(len(raw))}
    for bit in range(len(raw) * 8):
        mutated = bytearray(raw)
        mutated[bit // 8] ^= 1 << (bit % 8)
        variants.add(bytes(mutated))
    for variant in variants:
        with pytest.raises(BadCookie):
            k.open_cookie(COOKIE_KEY, variant.decode("latin-1"))


@HYP
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_fuzz_arbitrary_strings_are_bad_cookies(cookie: str) -> None:
    with pytest.raises(BadCookie):
        k.open_cookie(COOKIE_KEY, cookie)


@st.composite
def mutated_cookies(draw: st.DrawFn) -> str:
    data = bytearray(COOKIE_C.encode())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "swap-dot"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        value = draw(st.integers(0, 255))
        if op == "flip" and data:
            data[at] ^= 1 << (value % 8)
        elif op == "set" and data:
            data[at] = value
        elif op == "insert":
            data.insert(at, value)
        elif op == "delete" and data:
            del data[at]
        elif data:
            data[at] = ord(".")
    return bytes(data).decode("latin-1")


@HYP
@given(mutated_cookies())
def test_fuzz_mutated_cookies_are_bad_cookies(cookie: str) -> None:
    assume(cookie != COOKIE_C)
    with pytest.raises(BadCookie):
        k.open_cookie(COOKIE_KEY, cookie)


def test_error_hierarchy() -> None:
    for cls in (SealBroken, BadParameters, WrongPassword, WrongRecoveryCode, BadCookie):
        assert issubclass(cls, CryptoFailure) and not issubclass(cls, KeyError)
    assert issubclass(CryptoFailure, Exception)


# --- export --------------------------------------------------------------------------------------


def test_export_slot_round_trip_and_failures() -> None:
    dek = k.new_data_key()
    slot = k.wrap_for_export(dek, password=PASSWORD, export_id="exp-1", params=FAST)
    assert slot["t"] == "export" and slot["kid"] == dek.kid and "pep" not in slot
    assert k.unwrap_export(slot, password=PASSWORD, export_id="exp-1") == dek
    with pytest.raises(WrongPassword):
        k.unwrap_export(slot, password="not the password", export_id="exp-1")
    with pytest.raises(WrongPassword):
        k.unwrap_export(slot, password=PASSWORD, export_id="exp-2")
    with pytest.raises(WrongPassword):
        k.unwrap_export({**slot, "kid": k.new_data_key().kid}, password=PASSWORD, export_id="exp-1")
    for broken in ({**slot, "t": "pw"}, {**slot, "ct": "AAAA"}, {**slot, "kdf": {**slot["kdf"], "alg": "scrypt"}},
                   {**slot, "extra": 1}, [], None):  # fmt: skip
        with pytest.raises(SealBroken):
            k.unwrap_export(broken, password=PASSWORD, export_id="exp-1")


def test_export_mac() -> None:
    dek = k.new_data_key()
    doc = {"format": "dreamtree-export", "export_id": "exp-1",
           "records": {"tool_instances": [{"id": "r1", "content_json": seal(dek, "x")}, {"id": "r2"}]}}  # fmt: skip
    mac = k.export_mac(dek, "exp-1", doc)
    assert len(b64d(mac)) == 32
    k.verify_export_mac(dek, "exp-1", json.loads(json.dumps(doc, indent=2)), mac)
    truncated = {**doc, "records": {"tool_instances": doc["records"]["tool_instances"][:1]}}
    for dek_, export_id, document, tag in [
        (dek, "exp-1", truncated, mac),
        (dek, "exp-2", doc, mac),
        (k.new_data_key(), "exp-1", doc, mac),
        (dek, "exp-1", doc, mac[:-1] + ("A" if mac[-1] != "A" else "B")),
        (dek, "exp-1", doc, None),
        (dek, "exp-1", doc, "ü" * 43),
    ]:
        with pytest.raises(SealBroken):
            k.verify_export_mac(dek_, export_id, document, tag)
    with pytest.raises(ValueError):
        k.export_mac(dek, "exp-1", {**doc, "mac": mac})
