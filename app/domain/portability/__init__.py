"""Export, import and merge: a reader's whole workbook, portable, never duplicated, never lost.

- `document`: the format (spec §9, "1.1") as msgspec Structs; the JSON Schema comes from them.
- `export`: everything of the reader in one read batch, as an encrypted file (a saved
  account's default) or a readable one.
- `incoming`: what a merge brings in, in clear: an opened file, or this device's anonymous
  workbook at sign-in.
- `merge`: one unit of work; one module per kind (skills, settings, scores, answers, tool
  entries, modules) over a small context; one read batch, one guarded write batch.
- `importing`: the services: import a file, merge the anonymous workbook at sign-in.

docs/portability.md has the rules a reader can expect; docs/engines.md what each write reads
and writes.
"""

from __future__ import annotations

from app.domain.portability.document import (
    FORMAT_VERSION,
    MAX_DOCUMENT_BYTES,
    CustomSkillDoc,
    ExerciseDoc,
    ExportDoc,
    ExportKey,
    ModuleDoc,
    ScoreDoc,
    SettingsDoc,
    ToolDoc,
    decode_document,
    json_schema,
    unwrap_upload,
)
from app.domain.portability.export import Exported, export, export_account
from app.domain.portability.importing import import_document, import_into, import_upload, merge_anonymous
from app.domain.portability.report import ImportReport

__all__ = [
    "FORMAT_VERSION",
    "MAX_DOCUMENT_BYTES",
    "CustomSkillDoc",
    "ExerciseDoc",
    "ExportDoc",
    "ExportKey",
    "Exported",
    "ModuleDoc",
    "ScoreDoc",
    "SettingsDoc",
    "ToolDoc",
    "ImportReport",
    "decode_document",
    "export",
    "export_account",
    "import_document",
    "import_into",
    "import_upload",
    "json_schema",
    "merge_anonymous",
    "unwrap_upload",
]
