"""Every key in DreamTree store, and the only module that touches one.

The design (docs/security.md tells it, with the reasons):

- Each user has a random 256-bit data key (DEK) named by a random 128-bit `kid`. Every user-written
  document is one AES-256-GCM envelope under it, bound to (kid, table, row, JSON pointer).
- A password never *is* a key: one Argon2id run per operation, then HKDF (peppered with a server
  secret) splits it into the stored verifier and the key-encryption key (KEK) that wraps the DEK.
  Changing a password re-wraps; it never re-encrypts.
- A recovery code (128 random bits, no Argon2, no pepper) wraps the DEK a second time.
- A session cookie carries a random token and the DEK sealed under a key derived from the server
  key *and* that token, so a database dump holds neither sessions nor keys.
- An export carries a fresh, unpeppered, stronger-Argon2 copy of the DEK plus a MAC over the file.

Everything here is pure and synchronous; callers run the Argon2 paths in a worker thread. Failures
raise `CryptoFailure` subclasses whose messages never contain secrets, plaintext or ciphertext.
Wrong *calls* (a short key, a malformed table name) raise ValueError/TypeError: they are bugs.

Long on purpose: this is the one module that touches a key (data keys, the slots that wrap
them, passwords, recovery codes, cookies, export files), so that a security review reads every
use of key material here and nowhere else. Its sections are marked `# --- …`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, NewType, NoReturn, TypeGuard

import msgspec
import rfc8785
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.domain.json_limits import FreeJSON

KEY_BYTES: Final = 32
KID_BYTES: Final = 16
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
SALT_BYTES: Final = 16
TOKEN_BYTES: Final = 32
RECOVERY_BYTES: Final = 16
MIN_SECRET_BYTES: Final = 32
MAX_CIPHERTEXT_BYTES: Final = 1 << 20  # one envelope per row; a row is at most 1 MiB
ENVELOPE_VERSION: Final = "dt1"
_WRAPPED_BYTES: Final = KEY_BYTES + TAG_BYTES

_B64U = re.compile(r"[A-Za-z0-9_-]*")
_B64U_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # user ids, export ids, pepper ids: never "." "," "$" "|"
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # needs no escaping or normalising in JSON
_DIGITS = re.compile(rb"[0-9]{16}")  # the start of an integer that may lie beyond 2**53
_POINTER = re.compile(r"(?:/(?:[^~/]|~[01])*)*")  # RFC 6901; "" is the whole document


# --- errors -------------------------------------------------------------------------------------


class CryptoFailure(Exception):
    """Something sealed did not open. Deliberately not a DomainError: services decide the status."""

    default: ClassVar[str] = "cryptographic check failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)


class SealBroken(CryptoFailure):
    default = "an encrypted value failed its integrity check"


class BadParameters(CryptoFailure):
    default = "key-derivation parameters are outside the accepted bounds"


class WrongPassword(CryptoFailure):
    default = "wrong password"


class WrongRecoveryCode(CryptoFailure):
    default = "wrong recovery code"


class BadCookie(CryptoFailure):
    default = "session cookie is not valid"


# --- encodings and primitives -------------------------------------------------------------------


def b64u_encode(data: bytes) -> str:
    """Base64url without padding: the one text form of binary in every format here."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: object, *, length: int | None = None, max_length: int | None = None) -> bytes:
    """Strict inverse of b64u_encode; ValueError for padding, stray characters, non-zero spare bits
    (a second spelling of the same bytes would let an attacker vary a sealed value undetected),
    a wrong `length`, or more than `max_length` bytes (checked before decoding)."""
    if not isinstance(text, str):
        raise ValueError("not canonical base64url")
    if max_length is not None and len(text) > -(-max_length * 4 // 3):
        raise ValueError("encoded value too long")
    if not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not canonical base64url")
    spare = len(text) % 4  # 2 or 3 characters end the text: their last one has 4 or 2 spare bits
    if spare and _B64U_VALUE[text[-1]] & (0b1111 if spare == 2 else 0b11):
        raise ValueError("not canonical base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if length is not None and len(data) != length:
        raise ValueError("not canonical base64url")
    return data


def _hkdf(ikm: bytes, *, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(ikm)


def _need_secret(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) < MIN_SECRET_BYTES:
        raise ValueError(f"{what} must be at least {MIN_SECRET_BYTES} bytes")
    return value


def _need_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 characters of [A-Za-z0-9_-]")
    return value


def _is_kid(value: object) -> bool:
    try:
        return isinstance(value, str) and len(b64u_decode(value, length=KID_BYTES)) == KID_BYTES
    except ValueError:
        return False


def server_subkey(server_secret: bytes, purpose: str) -> bytes:
    """One configured secret, independent keys per purpose ("cookie", "pepper:p1", "csrf",
    "throttle"): a leak or misuse of one derived key says nothing about the others."""
    _need_secret(server_secret, "the server secret")
    if not isinstance(purpose, str) or not purpose or not purpose.isascii():
        raise ValueError("purpose must be a non-empty ASCII string")
    return _hkdf(server_secret, salt=None, info=b"dreamtree/v1/server|" + purpose.encode())


# --- data keys and canonical JSON ---------------------------------------------------------------


class DataKey:
    """A user's 256-bit data key and its kid. The bytes never leave this module: no accessor, a
    redacting repr, and no pickling, so a key cannot end up in a log line, a cache or a response."""

    __slots__ = ("_aead", "_dedup", "_key", "_kid")

    def __init__(self, key: bytes, kid: str) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        if not _is_kid(kid):
            raise ValueError("a kid is 22 base64url characters (128 bits)")
        self._key = key
        self._kid = kid
        self._dedup: bytes | None = None
        self._aead: AESGCM | None = None

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def dedup_key(self) -> bytes:
        """HMAC key for content_hash, separate from the encryption key by HKDF domain."""
        if self._dedup is None:
            self._dedup = _hkdf(self._key, salt=None, info=b"dreamtree/v1/dedup")
        return self._dedup

    @property
    def _cipher(self) -> AESGCM:
        """AES-256-GCM under this key, built on first use and kept with the key (a reader's key
        lives in the opened-cookie cache across their requests; a new cipher per value costs
        its set-up every time). Every call gives its own nonce; the object keeps no state of a
        message between calls."""
        if self._aead is None:
            self._aead = AESGCM(self._key)
        return self._aead

    def __repr__(self) -> str:
        return f"DataKey(kid={self._kid!r}, key=<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataKey):
            return NotImplemented
        return self._kid == other._kid and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._kid)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a DataKey is never serialised")


def new_data_key() -> DataKey:
    return DataKey(secrets.token_bytes(KEY_BYTES), b64u_encode(secrets.token_bytes(KID_BYTES)))


_INT_SAFE = 2**53 - 1  # JCS writes integers within ±(2**53 - 1) exactly as Python's str() does


def _nfc(value: object, plain: list[bool] | None = None) -> FreeJSON:
    """`value` with every string and key NFC-normalised. `plain[0]` is cleared when the value
    holds what only the full JCS writer spells right: a float, an integer beyond 2**53, or a
    key with a character outside the Basic Multilingual Plane (JCS sorts keys by UTF-16 units)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings")
            norm = unicodedata.normalize("NFC", key)
            if norm in out:
                raise ValueError("two object keys are equal after NFC normalisation")
            if plain is not None and norm and max(norm) > "\uffff":
                plain[0] = False
            out[norm] = _nfc(item, plain)
        return out
    if isinstance(value, (list, tuple)):
        return [_nfc(item, plain) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if plain is not None and (isinstance(value, float) or not -_INT_SAFE <= value <= _INT_SAFE):
            plain[0] = False
        return value
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# For JSON of strings, safe integers, booleans, null, lists and objects with BMP keys, JCS is
# exactly Python's own encoder with sorted keys, no spaces and no ASCII escaping (the same
# escapes: \" \\ \b \f \n \r \t, \u00xx for other control characters), at C speed.
_PLAIN_JCS = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


Canonical = NewType("Canonical", bytes)
"""Bytes `canonical_json` gave: a caller that needs a value's canonical form for more than one
thing (its size, its seal, its hash) computes it once and hands these on."""


def canonical_json(value: object) -> Canonical:
    """RFC 8785 (JCS) bytes of NFC-normalised JSON: what we encrypt, hash, MAC and bind as AAD, so
    equal content gives equal bytes whatever the key order, whitespace or Unicode composition.
    ValueError/TypeError for non-JSON values (NaN, integers beyond 2**53, sets, ...)."""
    plain = [True]
    normalised = _nfc(value, plain)
    if plain[0]:
        try:
            return Canonical(_PLAIN_JCS.encode(normalised).encode("utf-8"))
        except UnicodeEncodeError:
            pass  # a lone surrogate: the JCS writer refuses it in its own words
    return Canonical(rfc8785.dumps(normalised))


def content_hash(dek: DataKey, content: object) -> str:
    """Keyed hash for dedup (§3.5): equal within one key, unlinkable across users, and not a
    guessing oracle for short answers the way a bare SHA-256 would be."""
    return content_hash_of(dek, canonical_json(content))


def content_hash_of(dek: DataKey, canonical: Canonical) -> str:
    """`content_hash` of a value whose canonical bytes the caller already has."""
    return hmac.new(dek.dedup_key, canonical, hashlib.sha256).hexdigest()


# --- field envelopes ----------------------------------------------------------------------------


def _field_aad(kid: str, table: str, row_id: str, pointer: str) -> bytes:
    if (isinstance(row_id, str) and _PLAIN_ID.fullmatch(row_id) and not pointer and isinstance(table, str)
            and _TABLE.fullmatch(table) and isinstance(kid, str) and _PLAIN_ID.fullmatch(kid)):
        # the common case, written directly: canonical_json's bytes for these ASCII strings
        return f'["dreamtree-field/1","{kid}","{table}","{row_id}",""]'.encode("ascii")
    if not isinstance(table, str) or not _TABLE.fullmatch(table):
        raise ValueError("table must be a lower-case SQL identifier")
    if not isinstance(row_id, str) or not 0 < len(row_id) <= 128:
        raise ValueError("row_id must be a non-empty string")
    if not isinstance(pointer, str) or not _POINTER.fullmatch(pointer):
        raise ValueError("pointer must be an RFC 6901 JSON pointer")
    return canonical_json(["dreamtree-field/1", kid, table, row_id, pointer])


def is_envelope(value: object) -> TypeGuard[dict[str, str]]:
    """Shape test only (any version): an object with exactly the four envelope keys, all strings."""
    return (
        isinstance(value, dict)
        and value.keys() == {"$enc", "k", "n", "c"}
        and all(isinstance(item, str) for item in value.values())
    )


def seal_value(dek: DataKey, value: object, *, table: str, row_id: str, pointer: str) -> dict[str, str]:
    """Encrypt any JSON value; the AAD pins it to one key, table, row and path, so a ciphertext
    copied anywhere else fails to open. Strings come back NFC-normalised."""
    return _seal(dek, canonical_json(value), table=table, row_id=row_id, pointer=pointer)


def _seal(dek: DataKey, plaintext: Canonical, *, table: str, row_id: str, pointer: str) -> dict[str, str]:
    aad = _field_aad(dek.kid, table, row_id, pointer)
    if len(plaintext) + TAG_BYTES > MAX_CIPHERTEXT_BYTES:
        raise ValueError("value too large to seal")
    nonce = os.urandom(NONCE_BYTES)
    sealed = dek._cipher.encrypt(nonce, plaintext, aad)
    return {"$enc": ENVELOPE_VERSION, "k": dek.kid, "n": b64u_encode(nonce), "c": b64u_encode(sealed)}


def open_value(dek: DataKey, envelope: object, *, table: str, row_id: str, pointer: str) -> FreeJSON:
    """Decrypt one envelope or raise SealBroken. There is no plaintext fallback: a bare value where
    an envelope belongs is an integrity failure, never passed through (§3.4). Every cheap check
    (shape, version, kid, canonical base64, size) runs before AES."""
    aad = _field_aad(dek.kid, table, row_id, pointer)
    if not is_envelope(envelope):
        raise SealBroken("expected an encrypted value")
    if envelope["$enc"] != ENVELOPE_VERSION:
        raise SealBroken("unknown envelope version")
    if envelope["k"] != dek.kid:
        raise SealBroken("value is sealed under another key")
    try:
        nonce = b64u_decode(envelope["n"], length=NONCE_BYTES)
        sealed = b64u_decode(envelope["c"], max_length=MAX_CIPHERTEXT_BYTES)
    except ValueError:
        raise SealBroken("malformed or oversized envelope") from None
    if len(sealed) < TAG_BYTES:
        raise SealBroken("malformed or oversized envelope")
    try:
        plaintext = dek._cipher.decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise SealBroken("envelope failed authentication") from None
    if _DIGITS.search(plaintext) is None:  # no integer to read as a float: the fast decoder reads it the same
        result: FreeJSON = msgspec.json.decode(plaintext)
        return result
    return json.loads(plaintext, parse_int=_parse_int)


def _parse_int(text: str) -> int | float:
    """JCS writes a float such as 1e16 as digits; read it back as a float so the value can be
    canonicalised (re-sealed, hashed) again: integers beyond 2**53 are not JSON-safe."""
    number = int(text)
    return number if abs(number) < 2**53 else float(text)


def seal_document(dek: DataKey, doc: object, *, table: str, row_id: str) -> dict[str, str]:
    """The project's policy: a whole user-written document is one envelope (pointer "")."""
    return seal_value(dek, doc, table=table, row_id=row_id, pointer="")


def open_document(dek: DataKey, sealed: object, *, table: str, row_id: str) -> FreeJSON:
    return open_value(dek, sealed, table=table, row_id=row_id, pointer="")


def seal_column(dek: DataKey, doc: object, *, table: str, row_id: str) -> str:
    """A document sealed as the text its column stores (response_json, content_json)."""
    return seal_column_of(dek, canonical_json(doc), table=table, row_id=row_id)


def seal_column_of(dek: DataKey, canonical: Canonical, *, table: str, row_id: str) -> str:
    """`seal_column` of a document whose canonical bytes the caller already has (the
    document's envelope, `seal_document`'s, as ASCII JSON without spaces)."""
    return msgspec.json.encode(_seal(dek, canonical, table=table, row_id=row_id, pointer="")).decode()


def open_column(dek: DataKey, text: str, *, table: str, row_id: str) -> FreeJSON:
    """The document a response_json / content_json column holds."""
    try:
        envelope = msgspec.json.decode(text)
    except msgspec.DecodeError:
        envelope = json.loads(text)  # whatever else the column holds fails as it always did
    return open_document(dek, envelope, table=table, row_id=row_id)


# --- Argon2 -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """Argon2id cost: m KiB of memory, t passes, p lanes."""

    m: int
    t: int
    p: int

    PRODUCTION: ClassVar[Argon2Params]  # RFC 9106 low-memory = argon2-cffi default, ~120 ms here
    FAST: ClassVar[Argon2Params]  # OWASP's floor; tests and development only
    EXPORT: ClassVar[Argon2Params]  # a one-off operation can afford twice the memory
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {"m": (19456, 1048576), "t": (1, 10), "p": (1, 8)}

    def check_bounds(self) -> None:
        """Refuse weak (downgrade) or absurd (memory DoS) parameters read from any blob, before
        any hashing is attempted."""
        for name, (low, high) in self.BOUNDS.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise BadParameters(f"Argon2 {name} must be in [{low}, {high}]")


Argon2Params.PRODUCTION = Argon2Params(65536, 3, 4)
Argon2Params.FAST = Argon2Params(19456, 2, 1)
Argon2Params.EXPORT = Argon2Params(131072, 3, 4)

# The only costs an export file's key slot may name: the ones this service writes (EXPORT for
# every export; PRODUCTION and FAST, the login's profiles). An import file is attacker-controlled
# and its cost would otherwise be whatever BOUNDS allow (up to 1 GiB, t=10, p=8: seconds of
# several cores per import); anything else is refused before any hashing.
FILE_KDF_PROFILES: Final = frozenset({Argon2Params.EXPORT, Argon2Params.PRODUCTION, Argon2Params.FAST})


def _argon2(password: str, salt: bytes, params: Argon2Params) -> bytes:
    """M = Argon2id(NFKC(password)); NIST 800-63B asks for normalisation so the same password typed
    on another keyboard still works. Lone surrogates are kept (surrogatepass), never an error."""
    params.check_bounds()
    if not isinstance(password, str):
        raise TypeError("password must be a string")
    secret = unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")
    return hash_secret_raw(secret, salt, params.t, params.m, params.p, KEY_BYTES, Type.ID)


def _argon2_kdf(params: Argon2Params, salt: bytes) -> dict[str, object]:
    return {"alg": "argon2id", "v": 19, "m": params.m, "t": params.t, "p": params.p, "n": "nfkc",
            "salt": b64u_encode(salt)}  # fmt: skip


def _parse_argon2_kdf(kdf: object) -> tuple[Argon2Params, bytes]:
    if not isinstance(kdf, dict) or kdf.keys() != {"alg", "v", "m", "t", "p", "n", "salt"}:
        raise ValueError("unknown kdf")
    if kdf["alg"] != "argon2id" or kdf["v"] != 19 or type(kdf["v"]) is not int or kdf["n"] != "nfkc":
        raise ValueError("unknown kdf")
    return Argon2Params(kdf["m"], kdf["t"], kdf["p"]), b64u_decode(kdf["salt"], length=SALT_BYTES)


# --- passwords, key slots and recovery codes ----------------------------------------------------

_HASH = re.compile(
    r"\$dt-a2id-hkdf\$v=1\$k=([A-Za-z0-9_-]{1,64}),m=(0|[1-9][0-9]{0,9}),t=(0|[1-9][0-9]{0,9}),"
    r"p=(0|[1-9][0-9]{0,9})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})"
)
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RECOVERY_DIGITS: Final = 26  # 130 bits hold the 128


@dataclass(frozen=True, slots=True)
class _PasswordHash:
    pepper_id: str
    params: Argon2Params
    salt: bytes
    verifier: bytes

    @classmethod
    def parse(cls, text: object) -> _PasswordHash:
        match = _HASH.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError("not a dreamtree password hash")
        pep, m, t, p, salt, verifier = match.groups()
        params = Argon2Params(int(m), int(t), int(p))
        return cls(pep, params, b64u_decode(salt, length=SALT_BYTES), b64u_decode(verifier, length=KEY_BYTES))

    def __str__(self) -> str:
        p = self.params
        return (f"$dt-a2id-hkdf$v=1$k={self.pepper_id},m={p.m},t={p.t},p={p.p}"
                f"${b64u_encode(self.salt)}${b64u_encode(self.verifier)}")  # fmt: skip


def _uid(user_id: str) -> bytes:
    return _need_id(user_id, "user_id").encode()


def _slot_aad(user_id: str, kid: str, meta: Mapping[str, object]) -> bytes:
    """Binds the slot to its user and kid and authenticates its type, KDF parameters and pepper id,
    so swapping slots between users or editing `m` makes the tag fail."""
    return canonical_json(["dreamtree-slot/1", user_id, kid, meta])


def _seal_slot(kek: bytes, dek: DataKey, user_id: str, meta: Mapping[str, object]) -> dict[str, object]:
    nonce = os.urandom(NONCE_BYTES)  # every slot has a fresh KEK (fresh salt): no nonce reuse
    sealed = AESGCM(kek).encrypt(nonce, dek._key, _slot_aad(user_id, dek.kid, meta))
    return {**meta, "nonce": b64u_encode(nonce), "ct": b64u_encode(sealed)}


def _open_slot(kek: bytes, slot: dict[str, object], user_id: str, kid: str) -> DataKey:
    """Raises InvalidTag or ValueError; callers turn both into their one generic error."""
    meta = {key: value for key, value in slot.items() if key not in ("nonce", "ct")}
    nonce = b64u_decode(slot["nonce"], length=NONCE_BYTES)
    sealed = b64u_decode(slot["ct"], length=_WRAPPED_BYTES)
    return DataKey(AESGCM(kek).decrypt(nonce, sealed, _slot_aad(user_id, kid, meta)), kid)


_SLOT_KEYS: Final = {
    "pw": {"t", "kdf", "pep", "aead", "nonce", "ct"},
    "rk": {"t", "kdf", "aead", "nonce", "ct"},
}


def _check_slot(slot: object) -> None:
    if not isinstance(slot, dict):
        raise ValueError("unknown key slot")
    slot_type = slot.get("t")
    if not isinstance(slot_type, str) or _SLOT_KEYS.get(slot_type) != slot.keys():
        raise ValueError("unknown key slot")
    if slot["aead"] != "A256GCM":
        raise ValueError("unknown key slot")
    if slot["t"] == "pw":
        _parse_argon2_kdf(slot["kdf"])
        _need_id(slot["pep"], "pepper id")
    else:
        kdf = slot["kdf"]
        if not isinstance(kdf, dict) or kdf.keys() != {"alg", "salt"} or kdf["alg"] != "hkdf-sha256":
            raise ValueError("unknown kdf")
        b64u_decode(kdf["salt"], length=SALT_BYTES)


@dataclass(frozen=True, slots=True)
class KeySlots:
    """The `auth.wrapped_data_key` container (§2.4): per kid, a password slot and a recovery slot.
    Several kids may be present during a future DEK rotation; `active` names the one in use."""

    active: str
    keys: dict[str, list[dict[str, object]]]

    @classmethod
    def loads(cls, text: object) -> KeySlots:
        """Strict: anything unknown (version, slot type, kdf, extra keys) is ValueError."""
        if not isinstance(text, str):
            raise ValueError("container must be JSON text")
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("container nests too deeply") from None
        if not isinstance(data, dict) or data.keys() != {"v", "active", "keys"} or type(data["v"]) is not int:
            raise ValueError("unknown container")
        if data["v"] != 1 or not isinstance(data["keys"], dict) or not isinstance(data["active"], str):
            raise ValueError("unknown container")
        if data["active"] not in data["keys"]:
            raise ValueError("unknown container")
        keys: dict[str, list[dict[str, object]]] = {}
        for kid, entry in data["keys"].items():
            if not _is_kid(kid) or not isinstance(entry, dict) or entry.keys() != {"slots"}:
                raise ValueError("unknown container")
            if not isinstance(entry["slots"], list):
                raise ValueError("unknown container")
            for slot in entry["slots"]:
                _check_slot(slot)
            keys[kid] = entry["slots"]
        return cls(data["active"], keys)

    def dumps(self) -> str:
        keys = {kid: {"slots": slots} for kid, slots in self.keys.items()}
        return canonical_json({"v": 1, "active": self.active, "keys": keys}).decode()

    def slot(self, kid: str, slot_type: str) -> dict[str, object]:
        found = [slot for slot in self.keys.get(kid, []) if slot["t"] == slot_type]
        if len(found) != 1:
            raise ValueError("no such key slot")
        return found[0]

    def replace(self, kid: str, *new_slots: dict[str, object]) -> KeySlots:
        """Swap in slots of the given types for `kid`; slots of other types stay byte-identical."""
        types = {slot["t"] for slot in new_slots}
        kept = [slot for slot in self.keys.get(kid, []) if slot["t"] not in types]
        return KeySlots(self.active, {**self.keys, kid: [*new_slots, *kept]})


def _password_slot(
    dek: DataKey, *, user_id: str, password: str, pepper: bytes, pepper_id: str, params: Argon2Params
) -> tuple[str, dict[str, object]]:
    """One Argon2 run, two HKDF outputs: the stored verifier and the KEK. The pepper is the HKDF
    salt, so a database dump alone is neither a verifier oracle nor a KEK oracle (§2.2)."""
    uid, pepper = _uid(user_id), _need_secret(pepper, "pepper")
    _need_id(pepper_id, "pepper_id")
    salt = os.urandom(SALT_BYTES)
    master = _argon2(password, salt, params)
    verifier = _hkdf(master, salt=pepper, info=b"dreamtree/v1/verifier|" + uid)
    kek = _hkdf(master, salt=pepper, info=b"dreamtree/v1/kek-pw|" + uid)
    meta = {"t": "pw", "kdf": _argon2_kdf(params, salt), "pep": pepper_id, "aead": "A256GCM"}
    return str(_PasswordHash(pepper_id, params, salt, verifier)), _seal_slot(kek, dek, user_id, meta)


def format_recovery_code(raw: bytes) -> str:
    """Crockford base32 (no I, L, O, U), 26 digits in groups of five: XXXXX-XXXXX-…-X."""
    number, digits = int.from_bytes(raw, "big"), []
    for _ in range(_RECOVERY_DIGITS):
        digits.append(_CROCKFORD[number & 31])
        number >>= 5
    text = "".join(reversed(digits))
    return "-".join(text[i : i + 5] for i in range(0, _RECOVERY_DIGITS, 5))


def parse_recovery_code(code: object) -> bytes:
    """Forgiving about how a human typed it (case, spaces, dashes, O/0 and I/L/1), strict about the
    value; anything else is WrongRecoveryCode."""
    if not isinstance(code, str) or len(code) > 200:
        raise WrongRecoveryCode()
    cleaned = re.sub(r"[\s-]", "", code).upper().translate(str.maketrans("OIL", "011"))
    if len(cleaned) != _RECOVERY_DIGITS or any(ch not in _CROCKFORD for ch in cleaned):
        raise WrongRecoveryCode()
    number = 0
    for ch in cleaned:
        number = number * 32 + _CROCKFORD.index(ch)
    if number >> (8 * RECOVERY_BYTES):
        raise WrongRecoveryCode()
    return number.to_bytes(RECOVERY_BYTES, "big")


def _recovery_kek(raw: bytes, salt: bytes, user_id: str) -> bytes:
    # 128 random bits are beyond brute force: no Argon2; no pepper, so it survives losing the pepper.
    return _hkdf(raw, salt=salt, info=b"dreamtree/v1/kek-rk|" + _uid(user_id))


def _recovery_slot(dek: DataKey, user_id: str) -> tuple[str, dict[str, object]]:
    raw, salt = os.urandom(RECOVERY_BYTES), os.urandom(SALT_BYTES)
    meta = {"t": "rk", "kdf": {"alg": "hkdf-sha256", "salt": b64u_encode(salt)}, "aead": "A256GCM"}
    return format_recovery_code(raw), _seal_slot(_recovery_kek(raw, salt, user_id), dek, user_id, meta)


def claim_keys(
    dek: DataKey, *, user_id: str, password: str, pepper: bytes, pepper_id: str,
    params: Argon2Params = Argon2Params.PRODUCTION,
) -> tuple[str, str, str]:  # fmt: skip
    """Wrap the EXISTING data key (claiming re-wraps, never re-encrypts). Returns
    (password_hash, wrapped_data_key, recovery_code); the code is shown once and never stored."""
    password_hash, pw_slot = _password_slot(
        dek, user_id=user_id, password=password, pepper=pepper, pepper_id=pepper_id, params=params
    )
    code, rk_slot = _recovery_slot(dek, user_id)
    return password_hash, KeySlots(dek.kid, {dek.kid: [pw_slot, rk_slot]}).dumps(), code


def pepper_id_of(password_hash: str) -> str:
    """Which pepper a hash was made with, so the caller can pass the right one after a rotation."""
    return _PasswordHash.parse(password_hash).pepper_id


def unlock_with_password(
    *, user_id: str, password: str, password_hash: str, wrapped_data_key: str, pepper: bytes
) -> DataKey:
    """Verify, then unwrap. Every failure, including a malformed row or out-of-bounds parameters
    (refused before hashing), is the same WrongPassword: login reveals nothing more."""
    _need_secret(pepper, "pepper")
    try:
        parsed = _PasswordHash.parse(password_hash)
        slots = KeySlots.loads(wrapped_data_key)
        slot = slots.slot(slots.active, "pw")
        params, salt = _parse_argon2_kdf(slot["kdf"])
        if (params, salt, slot["pep"]) != (parsed.params, parsed.salt, parsed.pepper_id):
            raise ValueError("password hash and key slot disagree")
        master = _argon2(password, parsed.salt, parsed.params)
        uid = _uid(user_id)
        verifier = _hkdf(master, salt=pepper, info=b"dreamtree/v1/verifier|" + uid)
        if not hmac.compare_digest(verifier, parsed.verifier):
            raise ValueError("verifier mismatch")
        kek = _hkdf(master, salt=pepper, info=b"dreamtree/v1/kek-pw|" + uid)
        return _open_slot(kek, slot, user_id, slots.active)
    except (ValueError, TypeError, InvalidTag, BadParameters):
        raise WrongPassword() from None


def dummy_password_work(password: str, params: Argon2Params, pepper: bytes) -> None:
    """The Argon2 and HKDF work of a login, for an email that has no account, so timing does not
    tell which emails exist. The caller then fails exactly as for a wrong password."""
    salt = hmac.new(_need_secret(pepper, "pepper"), b"dreamtree/v1/dummy-salt", hashlib.sha256).digest()
    master = _argon2(password, salt[:SALT_BYTES], params)
    verifier = _hkdf(master, salt=pepper, info=b"dreamtree/v1/verifier|")
    hmac.compare_digest(verifier, salt)


def needs_rehash(
    password_hash: str, params: Argon2Params = Argon2Params.PRODUCTION, *, pepper_id: str | None = None
) -> bool:
    """True when the hash is unreadable, made with other parameters, or (if given) another pepper:
    the caller re-derives at the next login, while it has the password."""
    try:
        parsed = _PasswordHash.parse(password_hash)
    except ValueError:
        return True
    return parsed.params != params or (pepper_id is not None and parsed.pepper_id != pepper_id)


def change_password(
    dek: DataKey, *, user_id: str, new_password: str, pepper: bytes, pepper_id: str,
    wrapped_data_key: str, params: Argon2Params = Argon2Params.PRODUCTION,
) -> tuple[str, str]:  # fmt: skip
    """New salt and password slot around the same DEK; the recovery slot is kept as is. The caller
    has already proved the old password (unlock_with_password gave it `dek`)."""
    try:
        slots = KeySlots.loads(wrapped_data_key)
    except ValueError:
        raise SealBroken("stored key slots are unreadable") from None
    if slots.active != dek.kid:
        raise SealBroken("the data key does not belong to these key slots")
    password_hash, pw_slot = _password_slot(
        dek, user_id=user_id, password=new_password, pepper=pepper, pepper_id=pepper_id, params=params
    )
    return password_hash, slots.replace(dek.kid, pw_slot).dumps()


def unlock_with_recovery_code(*, user_id: str, code: str, wrapped_data_key: str) -> DataKey:
    raw = parse_recovery_code(code)
    try:
        slots = KeySlots.loads(wrapped_data_key)
        slot = slots.slot(slots.active, "rk")
        kdf = slot["kdf"]
        if not isinstance(kdf, dict):  # _check_slot has seen to it
            raise ValueError("unknown kdf")
        salt = b64u_decode(kdf["salt"], length=SALT_BYTES)
        return _open_slot(_recovery_kek(raw, salt, user_id), slot, user_id, slots.active)
    except (ValueError, TypeError, InvalidTag):
        raise WrongRecoveryCode() from None


def reset_with_recovery_code(
    *, user_id: str, code: str, new_password: str, pepper: bytes, pepper_id: str,
    wrapped_data_key: str, params: Argon2Params = Argon2Params.PRODUCTION,
) -> tuple[str, str, str]:  # fmt: skip
    """Forgotten password with the recovery code: the data survives, and both slots are replaced,
    because the old code has now been typed into a browser. Returns the new code to show once."""
    dek = unlock_with_recovery_code(user_id=user_id, code=code, wrapped_data_key=wrapped_data_key)
    password_hash, pw_slot = _password_slot(
        dek, user_id=user_id, password=new_password, pepper=pepper, pepper_id=pepper_id, params=params
    )
    new_code, rk_slot = _recovery_slot(dek, user_id)
    slots = KeySlots.loads(wrapped_data_key).replace(dek.kid, pw_slot, rk_slot)
    return password_hash, slots.dumps(), new_code


# --- session cookies ----------------------------------------------------------------------------


def new_session_token() -> bytes:
    return secrets.token_bytes(TOKEN_BYTES)


def session_id(token: bytes) -> str:
    """sessions.id: a UUIDv8 (RFC 9562) of a hash of the token, so the table never holds a token."""
    if not isinstance(token, bytes) or len(token) != TOKEN_BYTES:
        raise ValueError("a session token is 32 bytes")
    raw = bytearray(hashlib.sha256(b"dreamtree-session-id/1" + token).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def _cookie_key(server_key: bytes, token: bytes, sid: str) -> bytes:
    # Per-session key: the server key alone opens nothing, and never accumulates GCM nonces.
    info = b"dreamtree/v1/cookie|" + sid.encode()
    return _hkdf(_need_secret(server_key, "server_key"), salt=token, info=info)


def _cookie_aad(sid: str, user_id: str, kid: str) -> bytes:
    return canonical_json(["dreamtree-cookie/1", "v1", sid, user_id, kid])


def seal_cookie(server_key: bytes, token: bytes, *, user_id: str, dek: DataKey) -> str:
    """`v1.<token>.<user_id>.<kid>.<nonce||sealed DEK>`: about 190 ASCII bytes."""
    sid = session_id(token)
    _need_id(user_id, "user_id")
    nonce = os.urandom(NONCE_BYTES)
    aead = AESGCM(_cookie_key(server_key, token, sid))
    sealed = aead.encrypt(nonce, dek._key, _cookie_aad(sid, user_id, dek.kid))
    return ".".join(("v1", b64u_encode(token), user_id, dek.kid, b64u_encode(nonce + sealed)))


def open_cookie(server_key: bytes, cookie: object) -> tuple[bytes, str, DataKey, str]:
    """(token, sid, DataKey, user_id), or BadCookie for anything malformed, forged or spliced. The
    caller must still find `sid` in the sessions table with the same user_id (revocation)."""
    _need_secret(server_key, "server_key")
    if not isinstance(cookie, str) or len(cookie) > 4096 or not cookie.isascii():
        raise BadCookie()
    parts = cookie.split(".")
    if len(parts) != 5 or parts[0] != "v1" or not _ID.fullmatch(parts[2]) or not _is_kid(parts[3]):
        raise BadCookie()
    _, token_text, user_id, kid, blob = parts
    try:
        token = b64u_decode(token_text, length=TOKEN_BYTES)
        sealed = b64u_decode(blob, length=NONCE_BYTES + _WRAPPED_BYTES)
    except ValueError:
        raise BadCookie() from None
    sid = session_id(token)
    try:
        raw = AESGCM(_cookie_key(server_key, token, sid)).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _cookie_aad(sid, user_id, kid)
        )
    except InvalidTag:
        raise BadCookie() from None
    return token, sid, DataKey(raw, kid), user_id


# --- export -------------------------------------------------------------------------------------


def _export_kek(master: bytes, export_id: str) -> bytes:
    info = b"dreamtree/v1/kek-export|" + _need_id(export_id, "export_id").encode()
    return _hkdf(master, salt=None, info=info)


def wrap_for_export(
    dek: DataKey, *, password: str, export_id: str, params: Argon2Params = Argon2Params.EXPORT
) -> dict[str, object]:
    """A fresh, portable copy of the DEK for an export file (§5.2): new salt, stronger Argon2, no
    pepper (another installation has another one), bound to this export id, never a stored slot."""
    salt = os.urandom(SALT_BYTES)
    kek = _export_kek(_argon2(password, salt, params), export_id)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(kek).encrypt(nonce, dek._key, canonical_json(["dreamtree-export/1", export_id, dek.kid]))
    return {"t": "export", "kid": dek.kid, "kdf": _argon2_kdf(params, salt), "aead": "A256GCM",
            "nonce": b64u_encode(nonce), "ct": b64u_encode(sealed)}  # fmt: skip


def _parse_export_slot(slot: object) -> tuple[Argon2Params, bytes, bytes, bytes, str]:
    try:
        if not isinstance(slot, dict) or slot.keys() != {"t", "kid", "kdf", "aead", "nonce", "ct"}:
            raise ValueError("unknown slot")
        if slot["t"] != "export" or slot["aead"] != "A256GCM" or not _is_kid(slot["kid"]):
            raise ValueError("unknown slot")
        params, salt = _parse_argon2_kdf(slot["kdf"])
        nonce = b64u_decode(slot["nonce"], length=NONCE_BYTES)
        sealed = b64u_decode(slot["ct"], length=_WRAPPED_BYTES)
        kid: str = slot["kid"]
    except ValueError:
        raise SealBroken("the export key slot is malformed") from None
    params.check_bounds()
    if params not in FILE_KDF_PROFILES:
        raise BadParameters("the Argon2 cost of this key slot is not one DreamTree writes")
    return params, salt, nonce, sealed, kid


def check_export_slot(slot: object) -> Argon2Params:
    """The Argon2 cost an export slot names, checked without hashing (cheap: a caller can refuse
    a file before it waits for a hashing slot). SealBroken or BadParameters as unwrap_export."""
    return _parse_export_slot(slot)[0]


def unwrap_export(slot: object, *, password: str, export_id: str) -> DataKey:
    """SealBroken for a malformed slot, BadParameters for an Argon2 cost outside
    FILE_KDF_PROFILES (refused before hashing: an import file is attacker-controlled),
    WrongPassword otherwise."""
    _need_id(export_id, "export_id")
    params, salt, nonce, sealed, kid = _parse_export_slot(slot)
    kek = _export_kek(_argon2(password, salt, params), export_id)
    try:
        aad = canonical_json(["dreamtree-export/1", export_id, kid])
        raw = AESGCM(kek).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise WrongPassword() from None
    return DataKey(raw, kid)


def _export_mac_bytes(dek: DataKey, export_id: str, document_without_mac: object) -> bytes:
    if isinstance(document_without_mac, dict) and "mac" in document_without_mac:
        raise ValueError("remove the mac field before computing or checking it")
    info = b"dreamtree/v1/export-mac|" + _need_id(export_id, "export_id").encode()
    key = _hkdf(dek._key, salt=None, info=info)
    return hmac.new(key, canonical_json(document_without_mac), hashlib.sha256).digest()


def export_mac(dek: DataKey, export_id: str, document_without_mac: object) -> str:
    """MAC over the whole file: catches removed, truncated or spliced records, which per-field
    AEAD cannot see."""
    return b64u_encode(_export_mac_bytes(dek, export_id, document_without_mac))


def verify_export_mac(dek: DataKey, export_id: str, document_without_mac: object, mac: object) -> None:
    expected = export_mac(dek, export_id, document_without_mac).encode()
    if not isinstance(mac, str) or not mac.isascii() or not hmac.compare_digest(expected, mac.encode()):
        raise SealBroken("the export file failed its integrity check")
