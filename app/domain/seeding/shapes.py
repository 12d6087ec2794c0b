"""What the seed files hold: their shapes, the problems found in them, and YAML with line numbers.

The YAML files are converted into the msgspec Structs below (unknown keys refused); the
workbook's Markdown into `Exercise`/`Opening`. Every problem is a `SeedProblem` naming the
file and the line, so an editor fixes a file in one pass (`SeedInvalid` lists them all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import yaml

from app.domain.json_limits import FreeJSON

SEED_DIR = Path(__file__).resolve().parents[3] / "seed"

CONTENT_TYPES = ("instruction", "prompt", "reflection", "transition", "celebration")
USAGE_TYPES = ("direct_quote", "framework", "concept", "adaptation", "inspiration")
SKILL_CATEGORIES = ("transferable", "self_management", "knowledge")
COMPETENCY_CATEGORIES = ("delivery", "interpersonal", "strategic")
REFERENCE_CATEGORIES = (
    "Career Development & Life Design",
    "Personality & Career Fit",
    "Psychology, Performance & Mindset",
    "Communication & Storytelling",
    "Networking & Social Theory",
    "Skills Assessment & Classification",
    "Organizational Frameworks",
    "Online Resources",
)

MAX_BLOCK_BYTES = 40_000
"""A block's text at most: every row reaches D1 through statements of at most 100 KB, and a
block's text may grow to twice its size on the way (JSON escapes, doubled quotes)."""

S = TypeVar("S", bound=msgspec.Struct)

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]
Text = Annotated[str, msgspec.Meta(min_length=1)]


class SeedProblem(msgspec.Struct, frozen=True):
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class SeedInvalid(Exception):
    """The seed files have problems; nothing was written."""

    def __init__(self, problems: list[SeedProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --- the shapes of the YAML files ------------------------------------------------------------


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class PersonalityType(Strict):
    code: Annotated[str, msgspec.Meta(pattern=r"^[EI][NS][TF][JP]$")]
    name: Text
    summary: Text


class CompetencyLevel(Strict):
    level: int
    description: Text
    job_context: str | None = None


class Competency(Strict):
    id: Slug
    name: Text
    category: Literal["delivery", "interpersonal", "strategic"]
    sort_order: Annotated[int, msgspec.Meta(ge=1)]
    definition: Text
    levels: list[CompetencyLevel]
    relevant_modules: list[Annotated[str, msgspec.Meta(pattern=r"^\d+\.\d+$")]] = []


class Skill(Strict):
    id: Slug
    name: Text


class ToolType(Strict):
    id: Slug
    singular_name: Text
    plural_name: Text
    icon_name: Text
    has_reminder: bool = False
    reminder_frequency: Literal["daily", "weekly", "monthly"] | None = None
    reminder_prompt: str | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] = 1


class Reference(Strict):
    id: Slug
    author_surname: Text
    full_citation: Text
    short_citation: Text
    category: str | None = None
    metadata: dict[str, FreeJSON] | None = None  # free-form JSON written by editors


class SourceRef(Strict):
    reference: Slug
    usage: str
    notes: str | None = None


class ExerciseMeta(Strict):
    version: Annotated[int, msgspec.Meta(ge=1)] = 1
    required: bool = True
    unlocks_tool: str | None = None
    sources: list[SourceRef] = []


# --- the workbook, read -------------------------------------------------------------------------


@dataclass
class Block:
    content_type: str
    text: str
    variant_group: str | None
    line: int


@dataclass
class Exercise:
    part_id: str
    module_id: str
    exercise_id: str
    title: str
    meta: ExerciseMeta
    blocks: list[Block]
    file: str
    line: int
    meta_doc: YamlDoc | None = None  # where the metadata came from, for line numbers in errors

    @property
    def full_exercise_id(self) -> str:
        return f"{self.part_id}.{self.module_id}.{self.exercise_id}.v{self.meta.version}"


@dataclass
class Opening:
    """A part's or module's opening transition; stored as the blocks of exercise 0 (see docs/content.md)."""

    part_id: str
    module_id: str  # "0" for a part's opening
    title: str
    text: str
    file: str
    line: int

    @property
    def full_exercise_id(self) -> str:
        return f"{self.part_id}.{self.module_id}.0.v1"


@dataclass
class SeedData:
    """Everything the seed files say, validated."""

    personality_types: list[PersonalityType] = field(default_factory=list)
    competencies: list[Competency] = field(default_factory=list)
    skills: list[tuple[str, Skill]] = field(default_factory=list)  # (category, skill)
    tool_types: list[ToolType] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)
    exercises: list[Exercise] = field(default_factory=list)  # in sequence order


# --- YAML with line numbers -----------------------------------------------------------------

Path_ = tuple[str | int, ...]
"""Where a value sits in a YAML document: keys and list positions."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line_index(node: yaml.Node, path: Path_, index: dict[Path_, int]) -> None:
    index.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index[(*path, key.value)] = key.start_mark.line + 1
            _line_index(value, (*path, key.value), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)


def _parse_path(text: str) -> Path_:
    """msgspec's '$[3].levels[0].level' → (3, 'levels', 0, 'level')."""
    parts: list[str | int] = []
    for name, number in re.findall(r"\.([A-Za-z_][\w]*)|\[(\d+)\]", text):
        parts.append(int(number) if number else name)
    return tuple(parts)


class YamlDoc:
    """One YAML document and the line of every key and item in it."""

    def __init__(self, text: str, file: str, first_line: int = 1) -> None:
        self.file = file
        self.offset = first_line - 1
        self.lines: dict[Path_, int] = {}
        # One parse (libyaml when present): the node tree gives the lines, then the data.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            self.data: Any = loader.construct_document(node) if node is not None else None  # any YAML
        finally:
            loader.dispose()
        if node is not None:
            _line_index(node, (), self.lines)

    def line(self, path: Iterable[str | int] = ()) -> int:
        where = tuple(path)
        while where and where not in self.lines:
            where = where[:-1]
        return self.lines.get(where, 1) + self.offset

    def problem(self, path: Iterable[str | int], message: str) -> SeedProblem:
        where = tuple(path)
        shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
        at = f" (at {shown.lstrip('.')})" if shown else ""
        return SeedProblem(self.file, self.line(where), message + at)

    def convert(self, data: object, shape: type[S], path: Path_, problems: list[SeedProblem]) -> S | None:
        """`data` as an instance of `shape`, or None with the problem recorded at its line."""
        try:
            return msgspec.convert(data, shape)
        except msgspec.ValidationError as exc:
            message = str(exc)
            at = re.search(r" - at `\$([^`]*)`", message)
            sub = _parse_path(at.group(1)) if at else ()
            problems.append(self.problem((*path, *sub), message.split(" - at ")[0]))
            return None
