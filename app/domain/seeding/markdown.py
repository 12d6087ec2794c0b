"""The workbook in Markdown: parts, modules, exercises and their blocks, with line numbers.

seed/README.md is the editor's guide to the format. The reader is a small state machine over
the lines of `workbook/part-N.md`; every problem names the file and the line.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.domain.seeding.shapes import (
    CONTENT_TYPES,
    MAX_BLOCK_BYTES,
    USAGE_TYPES,
    Block,
    Exercise,
    ExerciseMeta,
    Opening,
    SeedData,
    SeedProblem,
    YamlDoc,
)

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
            self._check_size(self.opening.line, "opening text", text)
            self.opening = None
        elif self.current is not None and self.current.blocks:
            block = self.current.blocks[-1]
            block.text = text
            if not text:
                self.problem(block.line, f"the {block.content_type} block is empty")
            self._check_size(block.line, f"{block.content_type} block", text)
        self.text = None

    def _check_size(self, line: int, what: str, text: str) -> None:
        size = len(text.encode())
        if size > MAX_BLOCK_BYTES:
            self.problem(line, f"the {what} is {size:,} bytes; at most {MAX_BLOCK_BYTES:,} (split it into blocks)")

    def _close_exercise(self) -> None:
        self._close_text()
        exercise = self.current
        if exercise is None:
            return
        place = f"{exercise.part_id}.{exercise.module_id}.{exercise.exercise_id}"
        if not exercise.blocks:
            self.problem(exercise.line, f"exercise {place} has no blocks")
        elif not any(b.content_type == "prompt" for b in exercise.blocks):
            self.problem(exercise.line, f"exercise {place} has no prompt block")
        groups = {b.variant_group for b in exercise.blocks if b.variant_group}
        if len(groups) == 1:
            self.problem(exercise.line, f"exercise {place} has only one variant group {groups.pop()!r}; an A/B test needs two")
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


def read_workbook(directory: Path, data: SeedData, problems: list[SeedProblem]) -> None:
    """The workbook's Markdown files, in part order, into `data` (problems into `problems`)."""
    folder = directory / "workbook"
    files = sorted(folder.glob("*.md"), key=_part_number)
    if not files:
        problems.append(SeedProblem("workbook/", None, "no workbook files (*.md)"))
        return
    reader = _WorkbookReader(data, problems)
    for path in files:
        reader.read(path)
