"""The export format: spec §9's document, format "1.1", as msgspec Structs.

These Structs are the one source of the format: export builds them, import validates a file
against them (unknown fields refused, every list and string bounded), and the JSON Schema in
docs/export-format.schema.json is generated from them (`dreamtree export-schema`; a test
keeps the two equal). Files written by the original DreamTree app (spec §9's example: no
`encrypted`, no answer ids) fit them as they are.

An encrypted export (a saved account's default) adds `export_id`, `key` (a fresh copy of the
data key under the account password, Argon2id, no pepper) and `mac` (over the whole file);
its answers and tool entries are the stored envelopes. A readable export has none of the
three, says `"encrypted": false`, and holds every value in clear.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from app.domain.bodies import Password, Strict, ready_for_threads
from app.domain.errors import DomainError, Invalid, TooLarge
from app.domain.json_limits import FreeJSON, check_json
from app.domain.settings import BackgroundColor, Font, TextColor
from app.domain.skills import SkillCategory
from app.timeutil import normalize

FORMAT_VERSION: Literal["1.1"] = "1.1"
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 40  # the file's own structure adds up to 8 levels around a stored value
MAX_ANSWERS = 5_000
MAX_TOOLS = 10_000
MAX_SKILLS = 1_000

# A place of the workbook and its version: part.module.exercise.vN (tools.py's origin rule
# reads exercise ids the same way).
EXERCISE_ID = re.compile(r"([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})\.v([0-9]{1,9})")
MODULE_ID = re.compile(r"([0-9A-Za-z_-]{1,20})\.([0-9A-Za-z_-]{1,20})")
_EXPORT_ID = r"^[A-Za-z0-9_-]{1,64}$"

Timestamp = Annotated[str, msgspec.Meta(max_length=40, description="ISO 8601 with a time zone")]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
SkillIds = Annotated[list[Id], msgspec.Meta(max_length=50)]
ExerciseKey = Annotated[str, msgspec.Meta(max_length=80, pattern=r"^[0-9A-Za-z_-]{1,20}\.[0-9A-Za-z_-]{1,20}\."
                                                                 r"[0-9A-Za-z_-]{1,20}\.v[0-9]{1,9}$")]
ModuleKey = Annotated[str, msgspec.Meta(max_length=41, pattern=r"^[0-9A-Za-z_-]{1,20}\.[0-9A-Za-z_-]{1,20}$")]
Base64 = Annotated[str, msgspec.Meta(max_length=128)]


class Doc(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of the format's objects: unknown fields are refused."""


class SettingsDoc(Doc, frozen=True):
    background_color: BackgroundColor = "cream"
    text_color: TextColor = "charcoal"
    font: Font = "system"
    personality_type: Annotated[str, msgspec.Meta(max_length=4)] | None = None


class ScoreDoc(Doc, frozen=True):
    competency_id: Id
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    assessed_at: Timestamp


class ExerciseDoc(Doc, frozen=True, kw_only=True):
    """One answer. `id` is its row id here (an encrypted value is bound to it); files of the
    original app have none."""

    id: Id | None = None
    response_json: FreeJSON
    responded_at: Timestamp
    skills: SkillIds = []


class ModuleDoc(Doc, frozen=True):
    """A module: when it was first completed and last changed (both null while unfinished),
    and the answers given in it, by exercise id."""

    first_completed_at: Timestamp | None = None
    last_modified_at: Timestamp | None = None
    exercises: Annotated[dict[ExerciseKey, ExerciseDoc], msgspec.Meta(max_length=MAX_ANSWERS)] = {}


class ToolDoc(Doc, frozen=True, kw_only=True):
    """One tool entry. `content_json` holds the tool's fields; fields this installation does
    not know are kept as they are."""

    id: Id
    tool_type: Id
    origin: Id
    content_json: FreeJSON
    content_hash: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    skills: SkillIds = []
    created_at: Timestamp
    updated_at: Timestamp


class CustomSkillDoc(Doc, frozen=True):
    id: Id
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    category: SkillCategory | None = None


class ExportKdf(Doc, frozen=True):
    alg: Literal["argon2id"]
    v: int
    m: int
    t: int
    p: int
    n: Literal["nfkc"]
    salt: Base64


class ExportKey(Doc, frozen=True):
    """The file's own copy of the data key, sealed under a key derived from the password."""

    t: Literal["export"]
    kid: Base64
    kdf: ExportKdf
    aead: Literal["A256GCM"]
    nonce: Base64
    ct: Base64


class ExportDoc(Doc, frozen=True, kw_only=True):
    """Spec §9, format "1.1", plus the fields an encrypted export needs."""

    version: Literal["1.1"]
    exported_at: Timestamp
    encrypted: bool = False
    settings: SettingsDoc | None = None
    competency_scores: Annotated[list[ScoreDoc], msgspec.Meta(max_length=200)] = []
    modules: Annotated[dict[ModuleKey, ModuleDoc], msgspec.Meta(max_length=500)] = {}
    tool_instances: Annotated[list[ToolDoc], msgspec.Meta(max_length=MAX_TOOLS)] = []
    custom_skills: Annotated[list[CustomSkillDoc], msgspec.Meta(max_length=MAX_SKILLS)] = []
    export_id: Annotated[str, msgspec.Meta(pattern=_EXPORT_ID)] | None | UnsetType = UNSET
    key: ExportKey | None | UnsetType = UNSET
    mac: Annotated[str, msgspec.Meta(max_length=100)] | None | UnsetType = UNSET


def json_schema() -> dict[str, object]:
    return msgspec.json.schema(ExportDoc)


def _invalid(detail: str) -> Invalid:
    return Invalid(detail, code="import_invalid")


def decode_json(raw: bytes) -> FreeJSON:
    """An uploaded file's JSON, within MAX_DOCUMENT_BYTES: 413 when larger, 400 when not JSON."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise TooLarge(f"An import file can be at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB.", code="import_too_large")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise DomainError(f"The file is not valid JSON: {exc}", code="invalid_json") from None


def decode_document(raw: bytes | FreeJSON) -> ExportDoc:
    """The file as an ExportDoc, refused whole (422 `import_invalid`, saying why) before
    anything else happens when it breaks the format: its shape, its limits, its depth, Unicode
    keys that collide, exercise ids, or timestamps. Timestamps come back in the one canonical
    UTC form."""
    if isinstance(raw, (bytes, bytearray)):
        raw = decode_json(bytes(raw))
    check_json(raw, what="The file", code="import_invalid", max_depth=MAX_DEPTH)
    if isinstance(raw, dict) and raw.get("version") not in (None, FORMAT_VERSION):
        raise _invalid(f"Unsupported export format version {raw.get('version')!r}; this installation reads {FORMAT_VERSION!r}.")
    try:
        doc = msgspec.convert(raw, ExportDoc)
    except msgspec.ValidationError as exc:
        raise _invalid(f"The file does not match the export format: {exc}") from None
    if sum(len(m.exercises) for m in doc.modules.values()) > MAX_ANSWERS:
        raise _invalid(f"The file holds more than {MAX_ANSWERS} answers.")
    for key, module in doc.modules.items():
        if MODULE_ID.fullmatch(key) is None:
            raise _invalid(f"{key!r} is not a module id (part.module).")
        for exercise_id in module.exercises:
            if EXERCISE_ID.fullmatch(exercise_id) is None:
                raise _invalid(f"{exercise_id!r} is not an exercise id (part.module.exercise.vN).")
    try:
        return _normalised(doc)
    except ValueError as exc:
        raise _invalid(f"A timestamp in the file is not a valid ISO 8601 time with a zone: {exc}") from None


def _normalised(doc: ExportDoc) -> ExportDoc:
    replace = msgspec.structs.replace

    def maybe(text: str | None) -> str | None:
        return normalize(text) if text else None

    return replace(
        doc,
        exported_at=normalize(doc.exported_at),
        competency_scores=[replace(s, assessed_at=normalize(s.assessed_at)) for s in doc.competency_scores],
        modules={
            key: replace(m, first_completed_at=maybe(m.first_completed_at), last_modified_at=maybe(m.last_modified_at),
                         exercises={k: replace(e, responded_at=normalize(e.responded_at)) for k, e in m.exercises.items()})
            for key, m in doc.modules.items()
        },
        tool_instances=[replace(t, created_at=normalize(t.created_at), updated_at=normalize(t.updated_at))
                        for t in doc.tool_instances],
    )


class ImportWrapper(Strict):
    """The older upload form: `{"document": <the export>, "password": "..."}`."""

    document: FreeJSON
    password: Password | None = None


ready_for_threads(ExportDoc, ExportKey, ImportWrapper)  # converted on worker threads


def unwrap_upload(body: FreeJSON, header_password: str | None) -> tuple[FreeJSON, str | None]:
    """What an upload holds: the export document and the password that opens it. The body is
    the file that export downloads, as it is (its password in the `X-Export-Password`
    header), or the older wrapper `{"document": ..., "password": ...}`."""
    if isinstance(body, dict) and "document" in body and "version" not in body:
        try:
            wrapper = msgspec.convert(body, ImportWrapper)
        except msgspec.ValidationError as exc:
            raise _invalid(f"The upload does not have the expected shape: {exc}") from None
        return wrapper.document, wrapper.password if wrapper.password is not None else header_password
    return body, header_password


def place_of(full_exercise_id: str) -> tuple[str, str, str, int]:
    """(part, module, exercise, version) of an exercise id decode_document accepted."""
    found = EXERCISE_ID.fullmatch(full_exercise_id)
    assert found is not None
    part, module, exercise, version = found.groups()
    return part, module, exercise, int(version)
