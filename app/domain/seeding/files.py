"""Reading the seed files as content editors write them, and saying exactly what is wrong.

Tables come from YAML files, the workbook from Markdown (`markdown.py`; seed/README.md is the
editor's guide). Everything is validated before anything is written; every problem names the
file and the line (or the key path) and all problems are reported at once, so an editor fixes
a file in one pass. The result is `SeedData`: plain values, ready for `rows.desired_rows`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from app.domain.seeding.markdown import read_workbook
from app.domain.seeding.shapes import (
    REFERENCE_CATEGORIES,
    SEED_DIR,
    SKILL_CATEGORIES,
    Competency,
    Exercise,
    Path_,
    PersonalityType,
    Reference,
    S,
    SeedData,
    SeedInvalid,
    SeedProblem,
    Skill,
    ToolType,
    YamlDoc,
)
from app.domain.tool_shapes import SHAPES


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


def _list_of(doc: YamlDoc, shape: type[S], problems: list[SeedProblem]) -> list[tuple[Path_, S]]:
    if not isinstance(doc.data, list):
        problems.append(SeedProblem(doc.file, 1, "expected a list of entries"))
        return []
    items: list[tuple[Path_, S]] = []
    for i, entry in enumerate(doc.data):
        item = doc.convert(entry, shape, (i,), problems)
        if item is not None:
            items.append(((i,), item))
    return items


def _unique(doc: YamlDoc, items: list[tuple[Path_, S]], key: str, problems: list[SeedProblem], *, fold: bool = False) -> None:
    seen: set[str] = set()
    for path, item in items:
        value = getattr(item, key)
        folded = value.lower() if fold else value
        if folded in seen:
            problems.append(doc.problem((*path, key), f"duplicate {key} {value!r}"))
        seen.add(folded)


# --- the YAML files -----------------------------------------------------------------------------


def _keyed_list(directory: Path, name: str, shape: type[S], key: str,
                problems: list[SeedProblem]) -> tuple[YamlDoc, list[tuple[Path_, S]]] | None:
    """A YAML file that is a list of `shape`, each unique by `key` (None when it cannot be read)."""
    doc = _read_yaml(directory, name, problems)
    if not doc:
        return None
    items = _list_of(doc, shape, problems)
    _unique(doc, items, key, problems)
    return doc, items


def _personality_types(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    read = _keyed_list(directory, "personality_types.yaml", PersonalityType, "code", problems)
    if read:
        data.personality_types = [item for _, item in read[1]]


def _competencies(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    read = _keyed_list(directory, "competencies.yaml", Competency, "id", problems)
    if not read:
        return
    doc, items = read
    orders: dict[tuple[str, int], str] = {}
    for (i, *_), competency in items:
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
    items: list[tuple[Path_, Skill]] = []
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
    read = _keyed_list(directory, "tool_types.yaml", ToolType, "id", problems)
    if not read:
        return
    doc, items = read
    for (i, *_), tool in items:
        if tool.id not in SHAPES:
            problems.append(doc.problem((i, "id"), f"tool {tool.id!r} has no content shape in app/domain/tool_shapes.py "
                                        f"(known: {', '.join(sorted(SHAPES))})"))
        if tool.has_reminder and (tool.reminder_frequency is None or not tool.reminder_prompt):
            problems.append(doc.problem((i,), f"tool {tool.id} has a reminder but no reminder_frequency or reminder_prompt"))
        if not tool.has_reminder and tool.reminder_frequency is not None:
            problems.append(doc.problem((i, "reminder_frequency"), f"tool {tool.id} has no reminder, so reminder_frequency must be null"))
    data.tool_types = [item for _, item in items]


def _references(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    read = _keyed_list(directory, "references.yaml", Reference, "id", problems)
    if not read:
        return
    doc, items = read
    for (i, *_), reference in items:
        if reference.category is not None and reference.category not in REFERENCE_CATEGORIES:
            problems.append(doc.problem((i, "category"), f"unknown category {reference.category!r}"))
    data.references = [item for _, item in items]


# --- checks across files ------------------------------------------------------------------------


def _cross_checks(data: SeedData, problems: list[SeedProblem]) -> None:
    tools = {t.id for t in data.tool_types}
    references = {r.id for r in data.references}
    for exercise in data.exercises:
        doc = exercise.meta_doc

        def at(path: Path_, message: str, exercise: Exercise = exercise, doc: YamlDoc | None = doc) -> None:
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
    for reader in (_personality_types, _competencies, _skills, _tool_types, _references, read_workbook):
        reader(directory, data, problems)
    _cross_checks(data, problems)
    if problems:
        raise SeedInvalid(problems)
    return data


__all__ = ["SEED_DIR", "SeedData", "SeedInvalid", "SeedProblem", "read_seed"]
