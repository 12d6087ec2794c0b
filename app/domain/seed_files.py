"""Reading the seed files as content editors write them, and saying exactly what is wrong.

Tables come from YAML files, the workbook from Markdown (see seed/README.md for the editor's
guide). Everything is validated before anything is written; every problem names the file and
the line (or the key path) and all problems are reported at once, so an editor fixes a file
in one pass. The result is `SeedData`: plain rows, ready for `app.domain.seeding`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from app.domain.tool_shapes import SHAPES

SEED_DIR = Path(__file__).resolve().parents[2] / "seed"

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
    metadata: dict[str, Any] | None = None


class SourceRef(Strict):
    reference: Slug
    usage: str
    notes: str | None = None


class ExerciseMeta(Strict):
    version: Annotated[int, msgspec.Meta(ge=1)] = 1
    required: bool = True
    unlocks_tool: str | None = None
    sources: list[SourceRef] = []


# --- the result ---------------------------------------------------------------------------------


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
    personality_types: list[PersonalityType] = field(default_factory=list)
    competencies: list[Competency] = field(default_factory=list)
    skills: list[tuple[str, Skill]] = field(default_factory=list)  # (category, skill)
    tool_types: list[ToolType] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)
    exercises: list[Exercise] = field(default_factory=list)  # in sequence order


# --- YAML with line numbers -----------------------------------------------------------------


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line_index(node: yaml.Node, path: tuple[Any, ...], index: dict[tuple[Any, ...], int]) -> None:
    index.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            index[(*path, key.value)] = key.start_mark.line + 1
            _line_index(value, (*path, key.value), index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)


def _parse_path(text: str) -> tuple[Any, ...]:
    """msgspec's '$[3].levels[0].level' → (3, 'levels', 0, 'level')."""
    parts: list[Any] = []
    for name, number in re.findall(r"\.([A-Za-z_][\w]*)|\[(\d+)\]", text):
        parts.append(int(number) if number else name)
    return tuple(parts)


class YamlDoc:
    def __init__(self, text: str, file: str, first_line: int = 1) -> None:
        self.file = file
        self.offset = first_line - 1
        self.lines: dict[tuple[Any, ...], int] = {}
        # One parse (libyaml when present): the node tree gives the lines, then the data.
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            self.data: Any = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        if node is not None:
            _line_index(node, (), self.lines)

    def line(self, path: Iterable[Any] = ()) -> int:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1) + self.offset

    def problem(self, path: Iterable[Any], message: str) -> SeedProblem:
        path = tuple(path)
        shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        where = f" (at {shown.lstrip('.')})" if shown else ""
        return SeedProblem(self.file, self.line(path), message + where)

    def convert(self, data: Any, shape: Any, path: tuple[Any, ...], problems: list[SeedProblem]) -> Any:
        try:
            return msgspec.convert(data, shape)
        except msgspec.ValidationError as exc:
            message = str(exc)
            at = re.search(r" - at `\$([^`]*)`", message)
            sub = _parse_path(at.group(1)) if at else ()
            problems.append(self.problem((*path, *sub), message.split(" - at ")[0]))
            return None


def _read_yaml(directory: Path, name: str, problems: list[SeedProblem]) -> YamlDoc | None:
    path = directory / name
    if not path.exists():
        problems.append(SeedProblem(name, None, "file is missing"))
        return None
    try:
        return YamlDoc(path.read_text(encoding="utf-8"), name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(SeedProblem(name, mark.line + 1 if mark else None, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None


def _list_of(doc: YamlDoc, shape: Any, problems: list[SeedProblem]) -> list[Any]:
    if not isinstance(doc.data, list):
        problems.append(SeedProblem(doc.file, 1, "expected a list of entries"))
        return []
    items = []
    for i, entry in enumerate(doc.data):
        item = doc.convert(entry, shape, (i,), problems)
        if item is not None:
            items.append((i, item))
    return items


def _unique(doc: YamlDoc, items: list[tuple[Any, Any]], key: str, problems: list[SeedProblem], *, fold: bool = False) -> None:
    seen: dict[str, Any] = {}
    for path, item in items:
        value = getattr(item, key)
        folded = value.lower() if fold else value
        if folded in seen:
            problems.append(doc.problem((*path, key) if isinstance(path, tuple) else (path, key), f"duplicate {key} {value!r}"))
        seen[folded] = path


# --- the YAML files -----------------------------------------------------------------------------


def _personality_types(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    doc = _read_yaml(directory, "personality_types.yaml", problems)
    if doc:
        items = _list_of(doc, PersonalityType, problems)
        _unique(doc, items, "code", problems)
        data.personality_types = [item for _, item in items]


def _competencies(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    doc = _read_yaml(directory, "competencies.yaml", problems)
    if not doc:
        return
    items = _list_of(doc, Competency, problems)
    _unique(doc, items, "id", problems)
    orders: dict[tuple[str, int], str] = {}
    for i, competency in items:
        key = (competency.category, competency.sort_order)
        if key in orders:
            problems.append(doc.problem((i, "sort_order"), f"sort_order {competency.sort_order} is also used by {orders[key]} in {competency.category}"))
        orders[key] = competency.id
        levels = [level.level for level in competency.levels]
        for j, level in enumerate(competency.levels):
            if not 1 <= level.level <= 5:
                problems.append(doc.problem((i, "levels", j, "level"), f"level {level.level} is outside 1-5"))
        if sorted(levels) != [1, 2, 3, 4, 5]:
            problems.append(doc.problem((i, "levels"), f"competency {competency.id} needs exactly five levels, 1 to 5 (has {levels})"))
    data.competencies = [item for _, item in items]


def _skills(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    doc = _read_yaml(directory, "skills.yaml", problems)
    if not doc:
        return
    if not isinstance(doc.data, dict):
        problems.append(SeedProblem(doc.file, 1, f"expected a mapping of category to skills ({', '.join(SKILL_CATEGORIES)})"))
        return
    items: list[tuple[tuple[Any, ...], Skill]] = []
    for category, entries in doc.data.items():
        if category not in SKILL_CATEGORIES:
            problems.append(doc.problem((category,), f"unknown skill category {category!r} (use {', '.join(SKILL_CATEGORIES)})"))
            continue
        for i, entry in enumerate(entries or []):
            skill = doc.convert(entry, Skill, (category, i), problems)
            if skill is not None:
                items.append(((category, i), skill))
                data.skills.append((category, skill))
    _unique(doc, items, "id", problems)
    _unique(doc, items, "name", problems, fold=True)


def _tool_types(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    doc = _read_yaml(directory, "tool_types.yaml", problems)
    if not doc:
        return
    items = _list_of(doc, ToolType, problems)
    _unique(doc, items, "id", problems)
    for i, tool in items:
        if tool.id not in SHAPES:
            problems.append(doc.problem((i, "id"), f"tool {tool.id!r} has no content shape in app/domain/tool_shapes.py "
                                        f"(known: {', '.join(sorted(SHAPES))})"))
        if tool.has_reminder and (tool.reminder_frequency is None or not tool.reminder_prompt):
            problems.append(doc.problem((i,), f"tool {tool.id} has a reminder but no reminder_frequency or reminder_prompt"))
        if not tool.has_reminder and tool.reminder_frequency is not None:
            problems.append(doc.problem((i, "reminder_frequency"), f"tool {tool.id} has no reminder, so reminder_frequency must be null"))
    data.tool_types = [item for _, item in items]


def _references(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    doc = _read_yaml(directory, "references.yaml", problems)
    if not doc:
        return
    items = _list_of(doc, Reference, problems)
    _unique(doc, items, "id", problems)
    for i, reference in items:
        if reference.category is not None and reference.category not in REFERENCE_CATEGORIES:
            problems.append(doc.problem((i, "category"), f"unknown category {reference.category!r}"))
    data.references = [item for _, item in items]


# --- the workbook in Markdown -------------------------------------------------------------------

_PART = re.compile(r"^# Part (\d+):\s*(.+?)\s*$")
_MODULE = re.compile(r"^## Module (\d+)\.(\d+):\s*(.+?)\s*$")
_EXERCISE = re.compile(r"^### Exercise (\d+)\.(\d+)\.(\d+):\s*(.+?)\s*$")
_BLOCK = re.compile(r"^#### ([a-z_]+)(?:\s*\[([a-z0-9_]+)\])?\s*$")


def _part_number(path: Path) -> tuple[int, str]:
    match = re.search(r"(\d+)", path.stem)
    return (int(match.group(1)) if match else 0, path.name)


class _WorkbookReader:
    """A small state machine over the lines of the workbook's Markdown files."""

    def __init__(self, data: SeedData, problems: list[SeedProblem]) -> None:
        self.data, self.problems = data, problems
        self.part = 0
        self.module = 0
        self.exercise = 0
        self.text: list[str] | None = None  # where plain lines go right now
        self.current: Exercise | None = None
        self.opening: Opening | None = None
        self.file = ""

    def problem(self, line: int, message: str) -> None:
        self.problems.append(SeedProblem(self.file, line, message))

    def _close_text(self) -> None:
        text = "\n".join(self.text or []).strip()
        if self.opening is not None:
            self.opening.text = text
            if not text:
                self.problem(self.opening.line, "the opening text under this heading is empty")
            self.opening = None
        elif self.current is not None and self.current.blocks:
            block = self.current.blocks[-1]
            block.text = text
            if not text:
                self.problem(block.line, f"the {block.content_type} block is empty")
        self.text = None

    def _close_exercise(self) -> None:
        self._close_text()
        exercise = self.current
        if exercise is None:
            return
        if not exercise.blocks:
            self.problem(exercise.line, f"exercise {exercise.part_id}.{exercise.module_id}.{exercise.exercise_id} has no blocks")
        elif not any(b.content_type == "prompt" for b in exercise.blocks):
            self.problem(exercise.line, f"exercise {exercise.part_id}.{exercise.module_id}.{exercise.exercise_id} has no prompt block")
        groups = {b.variant_group for b in exercise.blocks if b.variant_group}
        if len(groups) == 1:
            self.problem(exercise.line, f"exercise {exercise.part_id}.{exercise.module_id}.{exercise.exercise_id} has only one variant group {groups.pop()!r}; an A/B test needs two")
        self.data.exercises.append(exercise)
        self.current = None

    def _expect(self, line: int, what: str, got: int, want: int) -> None:
        if got == want:
            return
        if got < want:
            self.problem(line, f"duplicate {what} number {got} (expected {want})")
        else:
            self.problem(line, f"gap in the order: {what} {got} follows {want - 1} (expected {want})")

    def read(self, path: Path) -> None:
        self.file = f"workbook/{path.name}"
        lines = path.read_text(encoding="utf-8").splitlines()
        fence_start: int | None = None
        fence: list[str] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip()
            if fence_start is not None:
                if line.strip() == "```":
                    self._exercise_meta(fence, fence_start)
                    fence_start, fence = None, []
                else:
                    fence.append(raw)
                continue
            if line.startswith("#"):
                self._heading(line, number)
            elif line.strip() == "```yaml":
                if self.current is None or self.current.blocks or self.text:
                    self.problem(number, "a ```yaml block belongs right under an exercise heading")
                fence_start = number + 1
            elif self.text is not None:
                self.text.append(line)
            elif line.strip():
                self.problem(number, "text outside any part, module, exercise or block")
        if fence_start is not None:
            self.problem(fence_start - 1, "the ```yaml block is not closed")
        self._close_exercise()
        self._close_text()

    def _heading(self, line: str, number: int) -> None:
        if match := _PART.match(line):
            self._close_exercise()
            part = int(match.group(1))
            self._expect(number, "part", part, self.part + 1)
            self.part, self.module, self.exercise = part, 0, 0
            self.opening = Opening(str(part), "0", match.group(2), "", self.file, number)
            self.data.openings.append(self.opening)
            self.text = []
        elif match := _MODULE.match(line):
            self._close_exercise()
            part, module = int(match.group(1)), int(match.group(2))
            if part != self.part:
                self.problem(number, f"module {part}.{module} is in part {self.part}")
            self._expect(number, "module", module, self.module + 1)
            self.module, self.exercise = module, 0
            self.opening = Opening(str(self.part), str(module), match.group(3), "", self.file, number)
            self.data.openings.append(self.opening)
            self.text = []
        elif match := _EXERCISE.match(line):
            self._close_exercise()
            part, module, exercise = (int(match.group(i)) for i in (1, 2, 3))
            if (part, module) != (self.part, self.module):
                self.problem(number, f"exercise {part}.{module}.{exercise} is in module {self.part}.{self.module}")
            self._expect(number, "exercise", exercise, self.exercise + 1)
            self.exercise = exercise
            self.current = Exercise(str(self.part), str(self.module), str(exercise), match.group(4), ExerciseMeta(), [], self.file, number)
            self.text = None
        elif match := _BLOCK.match(line):
            self._close_text()
            if self.current is None:
                self.problem(number, "a block heading (####) belongs inside an exercise")
                return
            content_type, variant = match.group(1), match.group(2)
            if content_type not in CONTENT_TYPES:
                self.problem(number, f"bad content type {content_type!r} (use {', '.join(CONTENT_TYPES)})")
            self.current.blocks.append(Block(content_type, "", variant, number))
            self.text = []
        else:
            self.problem(number, "unexpected heading: parts are '# Part N: Title', modules '## Module N.M: Title', "
                         "exercises '### Exercise N.M.E: Title', blocks '#### type' or '#### type [variant]'")

    def _exercise_meta(self, fence: list[str], first_line: int) -> None:
        assert self.current is not None or self.problems
        if self.current is None:
            return
        try:
            doc = YamlDoc("\n".join(fence), self.file, first_line)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            self.problem(first_line + (mark.line if mark else 0), f"not valid YAML: {getattr(exc, 'problem', exc)}")
            return
        meta = doc.convert(doc.data or {}, ExerciseMeta, (), self.problems)
        if meta is None:
            return
        for i, source in enumerate(meta.sources):
            if source.usage not in USAGE_TYPES:
                self.problems.append(doc.problem(("sources", i, "usage"), f"unknown usage type {source.usage!r} (use {', '.join(USAGE_TYPES)})"))
        self.current.meta = meta
        self.current.meta_doc = doc


def _workbook(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    folder = directory / "workbook"
    files = sorted(folder.glob("*.md"), key=_part_number)
    if not files:
        problems.append(SeedProblem("workbook/", None, "no workbook files (*.md)"))
        return
    reader = _WorkbookReader(data, problems)
    for path in files:
        reader.read(path)


# --- checks across files ------------------------------------------------------------------------


def _cross_checks(data: SeedData, problems: list[SeedProblem]) -> None:
    tools = {t.id for t in data.tool_types}
    references = {r.id for r in data.references}
    for exercise in data.exercises:
        doc = exercise.meta_doc

        def at(path: tuple[Any, ...], message: str, exercise: Exercise = exercise, doc: YamlDoc | None = doc) -> None:
            problems.append(doc.problem(path, message) if doc else SeedProblem(exercise.file, exercise.line, message))

        if exercise.meta.unlocks_tool is not None and exercise.meta.unlocks_tool not in tools:
            at(("unlocks_tool",), f"unknown tool type {exercise.meta.unlocks_tool!r} (not in tool_types.yaml)")
        seen: set[str] = set()
        for i, source in enumerate(exercise.meta.sources):
            if source.reference not in references:
                at(("sources", i, "reference"), f"unknown reference {source.reference!r} (not in references.yaml)")
            if source.reference in seen:
                at(("sources", i, "reference"), f"reference {source.reference!r} is listed twice")
            seen.add(source.reference)
    modules = {f"{e.part_id}.{e.module_id}" for e in data.exercises}
    for competency in data.competencies:
        for module in competency.relevant_modules:
            if module not in modules:
                problems.append(SeedProblem("competencies.yaml", None, f"{competency.id}: relevant module {module} is not in the workbook"))


def read_seed(directory: Path = SEED_DIR) -> SeedData:
    """Read and validate every seed file; raise SeedInvalid listing every problem."""
    data = SeedData()
    problems: list[SeedProblem] = []
    if not directory.is_dir():
        raise SeedInvalid([SeedProblem(str(directory), None, "no such seed directory")])
    for reader in (_personality_types, _competencies, _skills, _tool_types, _references, _workbook):
        reader(directory, data, problems)
    _cross_checks(data, problems)
    if problems:
        raise SeedInvalid(problems)
    return data


def metadata_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
