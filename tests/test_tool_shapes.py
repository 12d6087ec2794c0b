"""Tool content shapes: what each tool accepts, how it is normalised, its schema and its doc."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import msgspec
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain import tool_shapes
from app.domain.errors import Invalid
from app.domain.tool_shapes import MAX_CONTENT_BYTES, SHAPES, content_schema, validate_content

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")

# A full, realistic entry of every tool: what a reader of the workbook would type.
SAMPLES: dict[str, dict[str, Any]] = {
    "flow-tracker": {"activity": "Sketching the new onboarding flow", "energy": 4, "focus": 5,
                     "notes": "Two hours went by without noticing."},
    "failure-reframer": {"situation": "My talk at the meetup fell flat.", "first_reaction": "I am bad at this.",
                         "reframe": "One talk, one audience, first attempt.", "lesson": "Open with a story.",
                         "next_step": "Give it again to three friends."},
    "budget-calculator": {"month": "2026-05", "income": [{"label": "Salary", "amount": 3200},
                                                         {"label": "Tutoring", "amount": 240.5}],
                          "expenses": [{"label": "Rent", "amount": 1200, "essential": True},
                                       {"label": "Climbing gym", "amount": 55, "essential": False}],
                          "notes": "Saving for a course."},
    "soared-story": {"title": "The records migration", "situation": "Our records lived in three systems.",
                     "obstacle": "No one owned the data.", "action": "I mapped every field with each team.",
                     "result": "One system, two months early.", "evaluation": "It worked because I listened.",
                     "discovery": "I like untangling things."},
    "networking-prep": {"contact_name": "Ana Ruiz", "organization": "Northwind", "goal": "Learn what a UX researcher does",
                        "questions": ["What does a normal week look like?", "What surprised you?"],
                        "follow_up": "Send the article we talked about.", "meeting_date": "2026-06-03"},
    "job-prospector": {"organization": "Northwind", "role": "UX Researcher", "status": "applied",
                       "link": "https://jobs.example.org/ux-researcher", "next_step": "Follow up on Friday",
                       "notes": "Referred by Ana."},
    "list-builder": {"title": "Jobs I have held", "items": ["Barista", "Office manager", "Records lead"]},
    "ranking-grid": {"title": "What matters in my next role", "items": ["Learning", "Team", "Pay", "Commute"],
                     "criteria": "What I would miss most if it were gone."},
    "idea-tree": {"root": "Work with maps", "branches": [
        {"idea": "Cartography", "leaves": ["Evening course", "Portfolio of city maps"]},
        {"idea": "GIS analyst", "leaves": ["Ask Ana's colleague"]}]},
    "resume-builder": {"headline": "Records lead turning into UX researcher", "summary": "Ten years of untangling systems.",
                       "experience": [{"title": "Records lead", "organization": "City archive", "start": "2019-03",
                                       "end": None, "highlights": ["Merged three systems into one"]}],
                       "education": [{"institution": "Open University", "qualification": "BSc Psychology",
                                      "start": "2012-09", "end": "2016-06"}],
                       "skills": ["Interviewing", "SQL"]},
}

# The one field each tool requires.
REQUIRED = {"flow-tracker": "activity", "failure-reframer": "situation", "budget-calculator": "month",
            "soared-story": "title", "networking-prep": "contact_name", "job-prospector": "organization",
            "list-builder": "title", "ranking-grid": "title", "idea-tree": "root", "resume-builder": "headline"}


def refusal(tool: str, content: Any) -> Invalid:
    with pytest.raises(Invalid) as caught:
        validate_content(tool, content)
    return caught.value


def test_every_tool_of_the_seed_has_a_shape() -> None:
    seeded = [t["id"] for t in yaml.safe_load((ROOT / "seed" / "tool_types.yaml").read_text(encoding="utf-8"))]
    assert sorted(seeded) == sorted(SHAPES) == sorted(SAMPLES) == sorted(REQUIRED)


@pytest.mark.parametrize("tool", sorted(SAMPLES))
def test_a_full_entry_is_kept_as_typed(tool: str) -> None:
    assert validate_content(tool, SAMPLES[tool]) == SAMPLES[tool]


@pytest.mark.parametrize("tool", sorted(SAMPLES))
def test_only_the_name_is_required_and_the_rest_gets_defaults(tool: str) -> None:
    field = REQUIRED[tool]
    minimal = {field: SAMPLES[tool][field]}
    normalised = validate_content(tool, minimal)
    assert set(normalised) == set(SAMPLES[tool])
    assert normalised[field] == SAMPLES[tool][field]
    assert all(v in ("", [], None, "interested") for k, v in normalised.items() if k != field)
    missing = refusal(tool, {})
    assert missing.instance_code == "invalid_tool_content"
    assert missing.detail == f"{tool} content: Object missing required field `{field}`"


@pytest.mark.parametrize("tool", sorted(set(SAMPLES) - {"budget-calculator"}))  # a budget requires its month
def test_the_name_must_hold_some_text(tool: str) -> None:
    for blank in ("", "   ", "\n\t"):
        error = refusal(tool, {REQUIRED[tool]: blank})
        assert error.detail == (f"{tool} content: Expected `str` with some text in it (not only spaces)"
                                f" - at `$.{REQUIRED[tool]}`")


def test_text_is_never_stripped_or_shortened() -> None:
    typed = {"title": "  two spaces first\n", "items": ["", " padded ", "line one\nline two"]}
    assert validate_content("list-builder", typed) == typed


@pytest.mark.parametrize(
    ("tool", "content", "detail"),
    [
        ("flow-tracker", {"activity": "run", "energy": 9}, "flow-tracker content: Expected `int` <= 5 - at `$.energy`"),
        ("flow-tracker", {"activity": "run", "focus": 0}, "flow-tracker content: Expected `int` >= 1 - at `$.focus`"),
        ("flow-tracker", {"activity": "run", "energy": True}, "flow-tracker content: Expected `int | null`, got `bool` - at `$.energy`"),
        ("flow-tracker", {"activity": "run", "mood": "good"}, "flow-tracker content: Object contains unknown field `mood`"),
        ("flow-tracker", ["run"], "flow-tracker content: Expected `object`, got `array`"),
        ("flow-tracker", {"activity": "x" * 201}, "flow-tracker content: Expected `str` of length <= 200 - at `$.activity`"),
        ("flow-tracker", {"activity": "run", "notes": None}, "flow-tracker content: Expected `str`, got `null` - at `$.notes`"),
        ("budget-calculator", {"month": "2026-13"}, "budget-calculator content: Expected `str` in the form YYYY-MM - at `$.month`"),
        ("budget-calculator", {"month": "2026-05", "income": [{"label": "Pay", "amount": -1}]},
         "budget-calculator content: Expected `float` >= 0.0 - at `$.income[0].amount`"),
        ("budget-calculator", {"month": "2026-05", "expenses": [{"label": "Rent", "amount": 2e9}]},
         "budget-calculator content: Expected `float` <= 1000000000.0 - at `$.expenses[0].amount`"),
        ("budget-calculator", {"month": "2026-05", "expenses": [{"label": "Rent", "amount": "1200"}]},
         "budget-calculator content: Expected `float`, got `str` - at `$.expenses[0].amount`"),
        ("job-prospector", {"organization": "N", "status": "ghosted"},
         "job-prospector content: Invalid enum value 'ghosted' - at `$.status`"),
        ("job-prospector", {"organization": "N", "link": "javascript:alert(1)"},
         "job-prospector content: Expected `str` that is an http(s) address - at `$.link`"),
        ("job-prospector", {"organization": "N", "link": "https://example.org/job\n"},
         "job-prospector content: Expected `str` that is an http(s) address - at `$.link`"),
        ("budget-calculator", {"month": "2026-05\n"}, "budget-calculator content: Expected `str` in the form YYYY-MM - at `$.month`"),
        ("networking-prep", {"contact_name": "Ana", "meeting_date": "2026-02-30"},
         "networking-prep content: Invalid RFC3339 encoded date - at `$.meeting_date`"),
        ("networking-prep", {"contact_name": "Ana", "questions": ["?"] * 31},
         "networking-prep content: Expected `array` of length <= 30 - at `$.questions`"),
        ("list-builder", {"title": "L", "items": ["x" * 1001]}, "list-builder content: Expected `str` of length <= 1000 - at `$.items[0]`"),
        ("list-builder", {"title": "L", "items": "one item"}, "list-builder content: Expected `array`, got `str` - at `$.items`"),
        ("idea-tree", {"root": "maps", "branches": [{"idea": "GIS", "leaves": [], "fruit": 1}]},
         "idea-tree content: Object contains unknown field `fruit` - at `$.branches[0]`"),
        ("resume-builder", {"headline": "h", "experience": [{"title": "t", "start": "March 2019"}]},
         "resume-builder content: Expected `str` in the form YYYY-MM - at `$.experience[0].start`"),
    ],
)
def test_content_that_does_not_fit_is_refused_naming_the_field(tool: str, content: Any, detail: str) -> None:
    error = refusal(tool, content)
    assert error.instance_code == "invalid_tool_content"
    assert error.detail.startswith(detail)


def test_the_whole_entry_is_capped_in_canonical_size() -> None:
    highlight = "I did a thing worth telling about " * 28  # under the 1,000-character item limit
    experience = [{"title": f"Role {i}", "highlights": [highlight] * 10} for i in range(10)]
    error = refusal("resume-builder", {"headline": "h", "experience": experience})
    assert error.instance_code == "tool_content_too_large" and "64 KiB" in error.detail
    fits = validate_content("resume-builder", {"headline": "h", "experience": experience[:4]})
    assert len(msgspec.json.encode(fits)) < MAX_CONTENT_BYTES


def test_an_unknown_tool_has_no_shape() -> None:
    assert refusal("time-machine", {}).instance_code == "invalid_tool_content"


# --- the schema the page receives ---------------------------------------------------------------


def walk(schema: Any) -> list[dict[str, Any]]:
    """Every sub-schema of a schema."""
    found, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


@pytest.mark.parametrize("tool", sorted(SHAPES))
def test_the_schema_is_generated_once_from_the_shape(tool: str) -> None:
    assert content_schema(tool) == msgspec.json.schema(SHAPES[tool])
    assert content_schema(tool) is content_schema(tool)


@pytest.mark.parametrize("tool", sorted(SHAPES))
def test_the_schema_bounds_everything(tool: str) -> None:
    for node in walk(content_schema(tool)):
        kind = node.get("type")
        if kind == "object":
            assert node["additionalProperties"] is False, node
        elif kind == "string" and "enum" not in node and node.get("format") != "date":
            assert "maxLength" in node, node
        elif kind == "array":
            assert "maxItems" in node, node
        elif kind in ("integer", "number"):
            assert "minimum" in node and "maximum" in node, node


def validator(tool: str) -> Any:
    return jsonschema_rs.validator_for(content_schema(tool), validate_formats=True)


@pytest.mark.parametrize("tool", sorted(SAMPLES))
def test_the_schema_accepts_the_samples(tool: str) -> None:
    assert validator(tool).is_valid(SAMPLES[tool])


# Values near every limit and rule of the shapes, for the agreement test below.
EDGES = ["", " ", "a", "a" * 100, "a" * 101, "a" * 200, "a" * 201, "a" * 1000, "a" * 1001, "2026-05", "2026-13",
         "2026-05-01", "2026-02-30", "2026-05\n", "https://example.org/x", "https://example.org/x\n", "javascript:x", "applied", "ghosted", "interested"]
leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 8), st.sampled_from([-0.5, 1.5, 2e9, 999.99]),
                 st.sampled_from(EDGES), st.text(alphabet="ab \n", max_size=4))
value = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["label", "amount", "essential", "idea", "leaves",
                                                                  "title", "institution", "start", "end", "x"]),
                                                 inner, max_size=3)), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(tool=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_the_schema_says_exactly_what_the_server_accepts(tool: str, data: st.DataObject) -> None:
    """The page can trust the schema: an entry changed anywhere is accepted by both or by neither."""
    content = dict(SAMPLES[tool])
    field = data.draw(st.sampled_from([*content, "unknown_field"]))
    if data.draw(st.booleans(), label="remove"):
        content.pop(field, None)
    else:
        content[field] = data.draw(value, label="value")
    try:
        validate_content(tool, content)
        accepted = True
    except Invalid:
        accepted = False
    assert accepted == validator(tool).is_valid(content), content


# --- the documentation ---------------------------------------------------------------------------


def doc_section(tool: str) -> str:
    match = re.search(rf"^## `{re.escape(tool)}`.*?(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"docs/tools.md has no section for {tool}"
    return match.group(0)


@pytest.mark.parametrize("tool", sorted(SHAPES))
def test_docs_name_every_field_of_every_shape(tool: str) -> None:
    section = doc_section(tool)
    for definition in content_schema(tool)["$defs"].values():
        for field in definition["properties"]:
            assert re.search(rf"^\| `{field}` \|", section, re.M), f"docs/tools.md: {tool} does not describe {field}"
        for field in definition.get("required", []):
            assert re.search(rf"^\| `{field}` \|.*\| yes \|$", section, re.M), f"docs/tools.md: {tool}.{field} is required"


def test_docs_state_the_limits() -> None:
    for number in (tool_shapes.NAME_CHARS, tool_shapes.ITEM_CHARS, tool_shapes.TEXT_CHARS, MAX_CONTENT_BYTES // 1024):
        assert f"{number:,}" in DOC or str(number) in DOC
