"""What each tool's content is: one msgspec Struct per tool type, the single source of truth.

The API validates with these shapes, the import skips entries that do not fit them, and the
JSON Schema that GET /api/tools hands to the page is generated from them (once, at import
time). docs/tools.md describes every field; a test keeps the two in step.

Decisions (docs/tools.md "Decisions"):
- Unknown fields are refused, every string and list has a maximum length, numbers are bounded.
- Each tool has one required field, its name (a title, an activity, a contact...); it must
  hold some text, not only spaces. Everything else is optional and gets a default (`""` for
  text, `[]` for lists, `null` for numbers and dates), so a saved entry always has every
  field and equal entries hash the same (`content_hash`).
- Text is kept exactly as typed: never stripped, never shortened, only refused when too long.
  (Sealing stores strings in Unicode NFC, like answers.)
- Text fields take strings, never `null`: an empty field is `""`.
- The whole content is at most MAX_CONTENT_BYTES in canonical JSON, like an answer.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Final, Literal

import msgspec

from app.domain import keys
from app.domain.bodies import ready_for_threads
from app.domain.errors import Invalid
from app.domain.json_limits import FreeJSON

MAX_CONTENT_BYTES: Final = 64 * 1024

_NOT_BLANK: Final = r"\S"  # re.search: at least one character that is not a space
MONTH_PATTERN: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
LINK_PATTERN: Final = r"^(https?://\S+)?$"

# Text sizes, in characters.
NAME_CHARS: Final = 200  # a title, a name, a label, an organisation
ITEM_CHARS: Final = 1000  # one entry of a list: an item, a question, a highlight, an idea
TEXT_CHARS: Final = 5000  # a paragraph: a situation, a reframe, notes, a part of a story
LINK_CHARS: Final = 2000

Name = Annotated[str, msgspec.Meta(max_length=NAME_CHARS)]
RequiredName = Annotated[str, msgspec.Meta(max_length=NAME_CHARS, pattern=_NOT_BLANK)]
Item = Annotated[str, msgspec.Meta(max_length=ITEM_CHARS)]
RequiredItem = Annotated[str, msgspec.Meta(max_length=ITEM_CHARS, pattern=_NOT_BLANK)]
Text = Annotated[str, msgspec.Meta(max_length=TEXT_CHARS)]
RequiredText = Annotated[str, msgspec.Meta(max_length=TEXT_CHARS, pattern=_NOT_BLANK)]
Level = Annotated[int, msgspec.Meta(ge=1, le=5, description="1 (low) to 5 (high)")]
Amount = Annotated[float, msgspec.Meta(ge=0, le=1_000_000_000, description="a non-negative amount of money")]
# The max_length matters: Python's `$` also matches before a final newline, JSON Schema's does not.
Month = Annotated[str, msgspec.Meta(max_length=7, pattern=MONTH_PATTERN, description="YYYY-MM")]
Link = Annotated[str, msgspec.Meta(max_length=LINK_CHARS, pattern=LINK_PATTERN, description="an http(s) address, or empty")]


class Shape(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every tool shape and of the objects inside one."""


class FlowTracker(Shape):
    """Flow Log: an activity and how much energy and focus it brought."""

    activity: RequiredName
    energy: Level | None = None
    focus: Level | None = None
    notes: Text = ""


class FailureReframer(Shape):
    """Reframe: a setback seen again, from first reaction to next step."""

    situation: RequiredText
    first_reaction: Text = ""
    reframe: Text = ""
    lesson: Text = ""
    next_step: Text = ""


class IncomeLine(Shape):
    label: RequiredName
    amount: Amount = 0.0


class ExpenseLine(Shape):
    label: RequiredName
    amount: Amount = 0.0
    essential: bool = False


class BudgetCalculator(Shape):
    """Budget: one month's income and expenses."""

    month: Month
    income: Annotated[list[IncomeLine], msgspec.Meta(max_length=50)] = []
    expenses: Annotated[list[ExpenseLine], msgspec.Meta(max_length=100)] = []
    notes: Text = ""


class SoaredStory(Shape):
    """SOARED Story: Situation, Obstacle, Action, Result, Evaluation, Discovery."""

    title: RequiredName
    situation: Text = ""
    obstacle: Text = ""
    action: Text = ""
    result: Text = ""
    evaluation: Text = ""
    discovery: Text = ""


class NetworkingPrep(Shape):
    """Networking Prep: one conversation, prepared."""

    contact_name: RequiredName
    organization: Name = ""
    goal: Text = ""
    questions: Annotated[list[Item], msgspec.Meta(max_length=30)] = []
    follow_up: Text = ""
    meeting_date: datetime.date | None = None


class JobProspector(Shape):
    """Job Tracker: one opening and where it stands."""

    organization: RequiredName
    role: Name = ""
    status: Literal["interested", "applied", "interviewing", "offer", "declined", "rejected"] = "interested"
    link: Link = ""
    next_step: Text = ""
    notes: Text = ""

    def __post_init__(self) -> None:
        # Python's `$` lets "https://x\n" through the pattern; JSON Schema's does not.
        if self.link.endswith("\n"):
            raise ValueError(f"Expected `str` {_PLAIN_WORDS[f'matching regex {LINK_PATTERN!r}']} - at `$.link`")


class ListBuilder(Shape):
    """List: a titled list of items."""

    title: RequiredName
    items: Annotated[list[Item], msgspec.Meta(max_length=200)] = []


class RankingGrid(Shape):
    """Ranking: items in ranked order (the first is the highest), and what they were ranked by."""

    title: RequiredName
    items: Annotated[list[Item], msgspec.Meta(max_length=50)] = []
    criteria: Text = ""


class IdeaBranch(Shape):
    idea: RequiredItem
    leaves: Annotated[list[Item], msgspec.Meta(max_length=20)] = []


class IdeaTree(Shape):
    """Idea Tree: one root idea, branches growing from it, leaves from each branch."""

    root: RequiredItem
    branches: Annotated[list[IdeaBranch], msgspec.Meta(max_length=20)] = []


class Experience(Shape):
    title: RequiredName
    organization: Name = ""
    start: Month | None = None
    end: Annotated[Month | None, msgspec.Meta(description="YYYY-MM; null while it lasts")] = None
    highlights: Annotated[list[Item], msgspec.Meta(max_length=15)] = []


class Education(Shape):
    institution: RequiredName
    qualification: Name = ""
    start: Month | None = None
    end: Month | None = None


class ResumeBuilder(Shape):
    """Resume: a headline, a summary, experience, education and skills."""

    headline: RequiredName
    summary: Text = ""
    experience: Annotated[list[Experience], msgspec.Meta(max_length=30)] = []
    education: Annotated[list[Education], msgspec.Meta(max_length=15)] = []
    skills: Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)] = []


SHAPES: Final[dict[str, type[Shape]]] = {
    "flow-tracker": FlowTracker,
    "failure-reframer": FailureReframer,
    "budget-calculator": BudgetCalculator,
    "soared-story": SoaredStory,
    "networking-prep": NetworkingPrep,
    "job-prospector": JobProspector,
    "list-builder": ListBuilder,
    "ranking-grid": RankingGrid,
    "idea-tree": IdeaTree,
    "resume-builder": ResumeBuilder,
}

_SCHEMAS: Final[dict[str, dict[str, object]]] = {tool: msgspec.json.schema(shape) for tool, shape in SHAPES.items()}

# msgspec names the pattern; a reader needs to hear what it means.
_PLAIN_WORDS: Final = {
    f"matching regex {_NOT_BLANK!r}": "with some text in it (not only spaces)",
    f"matching regex {MONTH_PATTERN!r}": "in the form YYYY-MM",
    "of length <= 7": "in the form YYYY-MM",  # only a month is that short
    f"matching regex {LINK_PATTERN!r}": "that is an http(s) address",
}


def has_shape(tool_type: str) -> bool:
    return tool_type in SHAPES


def content_schema(tool_type: str) -> dict[str, object]:
    """The JSON Schema of a tool's content (computed once; callers must not change it)."""
    return _SCHEMAS[tool_type]


def _plain(message: str) -> str:
    for jargon, words in _PLAIN_WORDS.items():
        message = message.replace(jargon, words)
    return message


ready_for_threads(*SHAPES.values())  # imports validate entries on worker threads


def validate_content(tool_type: str, content: FreeJSON) -> dict[str, FreeJSON]:
    """The content in its normalised form (every field present, defaults filled in), or
    Invalid naming the tool and the field. The one rule for the API and for imports."""
    return validated(tool_type, content)[0]


def validated(tool_type: str, content: FreeJSON) -> tuple[dict[str, FreeJSON], keys.Canonical]:
    """`validate_content`, and the normalised content's canonical bytes it measured (for a
    caller that seals and hashes it next)."""
    shape = SHAPES.get(tool_type)
    if shape is None:
        raise Invalid(f"There is no content shape for tool {tool_type!r}.", code="invalid_tool_content")
    try:
        value = msgspec.convert(content, shape)
    except msgspec.ValidationError as exc:
        raise Invalid(f"{tool_type} content: {_plain(str(exc))}", code="invalid_tool_content") from None
    normalised: dict[str, FreeJSON] = msgspec.to_builtins(value)
    canonical = keys.canonical_json(normalised)
    if len(canonical) > MAX_CONTENT_BYTES:
        raise Invalid(f"{tool_type} content can be at most {MAX_CONTENT_BYTES // 1024} KiB.",
                      code="tool_content_too_large")
    return normalised, canonical



_FIELD_NAMES: Final[dict[str, frozenset[str]]] = {
    tool: frozenset(f.encode_name for f in msgspec.structs.fields(shape)) for tool, shape in SHAPES.items()}


def unknown_fields(tool_type: str, content: FreeJSON) -> dict[str, FreeJSON]:
    """The top-level fields of `content` that the tool's shape does not know, as they are.

    Only an import can bring such fields (a file from the original DreamTree app, or from a
    newer version of this one): they are the reader's writing, so they are kept verbatim
    beside the shape's fields, exported again, shown read-only by the page, and carried over
    when the entry is edited (`with_kept`). The API itself never accepts them."""
    known = _FIELD_NAMES.get(tool_type)
    if known is None or not isinstance(content, dict):
        return {}
    return {key: value for key, value in content.items() if key not in known}


def with_kept(tool_type: str, normalised: dict[str, FreeJSON], kept_from: FreeJSON) -> dict[str, FreeJSON]:
    """`normalised` content (from `validate_content`) with the unknown fields of `kept_from`
    (an imported file's content, or the entry as stored) kept beside it; the whole stays
    within MAX_CONTENT_BYTES."""
    kept = unknown_fields(tool_type, kept_from)
    if not kept:
        return normalised
    combined = {**normalised, **kept}
    if len(keys.canonical_json(combined)) > MAX_CONTENT_BYTES:
        raise Invalid(f"{tool_type} content can be at most {MAX_CONTENT_BYTES // 1024} KiB.",
                      code="tool_content_too_large")
    return combined
