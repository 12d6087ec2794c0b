"""What an import (or the sign-in merge) did, or would do on a dry run: counts per kind and
warnings, in the reader's words."""

from __future__ import annotations

from typing import Literal

import msgspec

Kind = Literal["settings", "competency_scores", "modules", "exercises", "tool_instances", "custom_skills"]
Outcome = Literal["inserted", "updated", "unchanged", "skipped"]
KINDS: tuple[Kind, ...] = ("settings", "competency_scores", "modules", "exercises", "tool_instances", "custom_skills")


class KindCounts(msgspec.Struct, frozen=True):
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0


class ImportCounts(msgspec.Struct, frozen=True):
    settings: KindCounts
    competency_scores: KindCounts
    modules: KindCounts
    exercises: KindCounts
    tool_instances: KindCounts
    custom_skills: KindCounts


class ImportReport(msgspec.Struct, frozen=True):
    """`counts` per kind of thing; `warnings` for everything skipped or changed on the way
    in (in the file's order). A dry run reports exactly what the import would do."""

    dry_run: bool
    counts: ImportCounts
    warnings: list[str]


class ReportBuilder:
    """The report, filled in kind by kind during a merge's decision."""

    __slots__ = ("counts", "warnings")

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {k: {"inserted": 0, "updated": 0, "unchanged": 0, "skipped": 0}
                                                  for k in KINDS}
        self.warnings: list[str] = []

    def add(self, kind: Kind, outcome: Outcome) -> None:
        self.counts[kind][outcome] += 1

    def warn(self, kind: Kind, text: str) -> None:
        self.warnings.append(f"{kind}: {text}")

    def skip(self, kind: Kind, text: str) -> None:
        self.add(kind, "skipped")
        self.warn(kind, text)

    def build(self, dry_run: bool) -> ImportReport:
        counts = ImportCounts(**{kind: KindCounts(**c) for kind, c in self.counts.items()})
        return ImportReport(dry_run=dry_run, counts=counts, warnings=list(self.warnings))
