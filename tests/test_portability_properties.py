"""Property tests: any workbook survives export → import → export, and import is idempotent."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.connection import Database
from app.domain import keys, portability, sessions
from app.domain.sessions import ServerKeys
from app.domain.tool_shapes import validate_content
from app.domain.workbook import is_empty

PLACES = ["1.1.1.v1", "1.1.2.v1", "1.2.1.v1", "1.2.2.v1"]
REQUIRED = {"1.1.1.v1", "1.2.1.v1", "1.2.2.v1"}  # tests/fixtures/seed_small: 1.1.2 is optional
SKILLS = ["active-listening", "composure", "bookkeeping"]

stamps = st.datetimes(
    min_value=__import__("datetime").datetime(2020, 1, 1), max_value=__import__("datetime").datetime(2030, 1, 1)
).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z")
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)

answers = st.dictionaries(st.sampled_from(PLACES), st.tuples(json_value, stamps, st.lists(st.sampled_from(SKILLS), unique=True, max_size=3)), max_size=4)
scores = st.dictionaries(st.just("analytical-thinking"), st.tuples(st.integers(1, 5), stamps), max_size=1)
# Tool contents that fit their tool's shape (app/domain/tool_shapes.py), with optional fields
# sometimes left out: the import fills in the defaults as the API does.
name = st.text(max_size=40).filter(lambda s: re.search(r"\S", s) is not None)
level = st.one_of(st.none(), st.integers(1, 5))
list_builder = st.fixed_dictionaries({"title": name}, optional={"items": st.lists(st.text(max_size=40), max_size=4)})
flow_tracker = st.fixed_dictionaries({"activity": name}, optional={"energy": level, "focus": level,
                                                                   "notes": st.text(max_size=40)})
tools = st.lists(st.one_of(st.tuples(st.just("list-builder"), list_builder, stamps, stamps),
                           st.tuples(st.just("flow-tracker"), flow_tracker, stamps, stamps)), max_size=4)
settings_strategy = st.fixed_dictionaries({
    "background_color": st.sampled_from(["cream", "sage", "sky", "blush", "night"]),
    "text_color": st.sampled_from(["charcoal", "ink", "espresso", "forest", "ivory"]),
    "font": st.sampled_from(["system", "serif", "sans", "mono", "dyslexic"]),
    "personality_type": st.sampled_from([None, "INTJ", "ENFP"]),
})


def document(book_answers, book_scores, book_tools, book_settings) -> dict:
    modules: dict = {}
    for full_id, (value, at, skills) in book_answers.items():
        module = ".".join(full_id.split(".")[:2])
        modules.setdefault(module, {"first_completed_at": None, "last_modified_at": None, "exercises": {}})
        modules[module]["exercises"][full_id] = {"response_json": value, "responded_at": at, "skills": skills}
    return {
        "version": "1.1", "exported_at": "2026-06-01T00:00:00.000Z", "encrypted": False, "settings": book_settings,
        "competency_scores": [{"competency_id": c, "score": s, "assessed_at": at} for c, (s, at) in book_scores.items()],
        "modules": modules,
        "tool_instances": [{"id": f"tool-{i}", "tool_type": t, "origin": "standalone", "content_json": v,
                            "created_at": min(a, b), "updated_at": max(a, b), "skills": []}
                           for i, (t, v, a, b) in enumerate(book_tools)],
        "custom_skills": [],
    }


def comparable(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc.pop("exported_at")
    for module in doc["modules"].values():
        for exercise in module["exercises"].values():
            exercise.pop("id", None)
    for tool in doc["tool_instances"]:
        tool.pop("id")
        tool.pop("content_hash", None)
    doc["tool_instances"].sort(key=lambda t: (t["created_at"], repr(t["content_json"])))
    return doc


@pytest.fixture
def database(seeded: Path):
    return seeded


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(book_answers=answers, book_scores=scores, book_tools=tools, book_settings=settings_strategy)
def test_round_trip_and_idempotence(database: Path, book_answers, book_scores, book_tools, book_settings) -> None:
    source = document(book_answers, book_scores, book_tools, book_settings)
    # Equal content twice is one instance (dedup by the content hash, i.e. canonical JSON of the
    # normalised content, Unicode NFC included): keep only the first of equals.
    seen, unique_tools = set(), []
    for t in source["tool_instances"]:
        key = keys.canonical_json(validate_content(t["tool_type"], t["content_json"]))
        if key not in seen:
            seen.add(key)
            unique_tools.append(t)
    source["tool_instances"] = unique_tools
    # An empty answer to a required exercise is skipped with a warning (tests/test_portability.py
    # shows it): the round trip is about everything that is kept.
    for module in source["modules"].values():
        module["exercises"] = {k: v for k, v in module["exercises"].items()
                               if not (k in REQUIRED and is_empty(v["response_json"]))}

    async def scenario() -> None:
        db = Database(database)
        await db.open()
        try:
            server = ServerKeys.derive(b"k" * 32)
            ann, _ = await sessions.start_anonymous(db, server)
            bob, _ = await sessions.start_anonymous(db, server)
            first = await portability.import_into(db, ann.user_id, ann.dek, source, password=None, dry_run=False,
                                                  gate=None)
            assert first.warnings == []

            async def export(reader: sessions.Principal) -> dict:
                exported = await portability.export(db, server, reader, password=None)
                return msgspec.to_builtins(exported.document)

            exported = await export(ann)
            await portability.import_document(db, bob, exported, password=None, dry_run=False)
            again = await export(bob)
            assert comparable(again) == comparable(exported)
            second = await portability.import_document(db, bob, exported, password=None, dry_run=False)
            for kind, counts in msgspec.structs.asdict(second.counts).items():
                assert counts.inserted == counts.updated == 0, (kind, counts)
            assert comparable(await export(bob)) == comparable(again)
        finally:
            await db.close()

    anyio.run(scenario)
