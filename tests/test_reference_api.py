"""Reference data over HTTP: personality types, competencies with levels, the credits list.

Seeded from the real `seed/` folder (the full lists). They carry no user data and need no
session; they are read fresh from the database on each request (no cache to go stale).
Also here: the health check (the other answer for nobody in particular) and the API
contract of the settings, reference, skills, competency and Daily Dos endpoints.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.db.queries import Q
from app.domain.reference import parse_metadata
from app.domain.settings import FONTS
from tests.conftest import JobLog
from tests.helpers import Reader, query

pytestmark = pytest.mark.both_engines

SPEC_COMPETENCIES = {
    "delivery": ["Analytical Thinking", "Achievement Focus", "Drafting Skills", "Flexible Thinking",
                 "Managing Resources", "Teamwork and Team Leadership"],
    "interpersonal": ["Client Focus", "Diplomatic Sensitivity", "Influencing", "Negotiating",
                      "Organizational Knowledge"],
    "strategic": ["Developing Talent", "Organizational Alignment", "Strategic Networking", "Strategic Thinking"],
}


@pytest.fixture
def visitor(full_seed: Path, new_reader: Callable[[], Reader]) -> Reader:
    """Someone on the credits page without a session."""
    return new_reader()


def test_the_sixteen_personality_types_by_code(visitor: Reader) -> None:
    response = visitor.get("/api/personality-types")
    assert response.status_code == 200
    types = response.json()
    assert len(types) == 16
    assert [t["code"] for t in types] == sorted(t["code"] for t in types)
    assert all(set(t) == {"code", "name", "summary"} and t["name"] and t["summary"] for t in types)
    assert {"ENFP", "INTJ", "ISTJ", "ESFP"} <= {t["code"] for t in types}


def test_competencies_by_the_specs_category_order_then_sort_order(visitor: Reader) -> None:
    competencies = visitor.get("/api/competencies").json()
    assert len(competencies) == 15
    categories = [c["category"] for c in competencies]
    assert categories == ["delivery"] * 6 + ["interpersonal"] * 5 + ["strategic"] * 4
    for category, names in SPEC_COMPETENCIES.items():
        mine = [c for c in competencies if c["category"] == category]
        assert sorted(c["name"] for c in mine) == sorted(names)
        assert [c["sort_order"] for c in mine] == sorted(c["sort_order"] for c in mine)
    first = competencies[0]
    assert set(first) == {"id", "name", "definition", "category", "sort_order", "levels"}


def test_each_competency_has_its_five_levels_in_order(visitor: Reader) -> None:
    for competency in visitor.get("/api/competencies").json():
        levels = competency["levels"]
        assert [level["level"] for level in levels] == [1, 2, 3, 4, 5], competency["id"]
        assert all(set(level) == {"level", "description", "job_context"} and level["description"] for level in levels)


def test_the_category_order_is_the_specs_not_the_alphabets(db_path: Path, new_reader) -> None:
    # If a category sorted differently by name, the order would still be the spec's.
    query(db_path, "INSERT INTO competencies (id, name, definition, category, sort_order) VALUES "
                     "('s1', 'S', 'd', 'strategic', 1), ('i1', 'I', 'd', 'interpersonal', 1), ('d1', 'D', 'd', 'delivery', 1),"
                     "('d0', 'D0', 'd', 'delivery', 0)")
    body = new_reader().get("/api/competencies").json()
    assert [c["id"] for c in body] == ["d0", "d1", "i1", "s1"]
    assert body[0]["levels"] == []


def test_references_are_sorted_by_author_surname_then_citation_number(visitor: Reader, full_seed: Path) -> None:
    references = visitor.get("/api/references").json()
    assert len(references) == query(full_seed, 'SELECT count(*) FROM "references"')[0][0] > 30
    keys = [(r["author_surname"], r["citation_number"]) for r in references]
    assert keys == sorted(keys)
    surnames = [r["author_surname"] for r in references]
    assert len(surnames) > len(set(surnames))  # the sample has authors with two works: the tie-break matters
    assert set(references[0]) == {"id", "citation_number", "author_surname", "full_citation", "short_citation",
                                  "category", "metadata", "used_in"}


def test_reference_metadata_is_a_parsed_object(visitor: Reader) -> None:
    references = {r["id"]: r for r in visitor.get("/api/references").json()}
    metadata = references["burnett-evans-2016"]["metadata"]
    assert isinstance(metadata, dict) and metadata["key_concepts"]
    assert all(r["metadata"] is None or isinstance(r["metadata"], dict) for r in references.values())


def test_unreadable_metadata_is_null_not_an_error() -> None:
    assert parse_metadata(None) is None
    assert parse_metadata("") is None
    assert parse_metadata("{not json") is None
    assert parse_metadata('["a list"]') is None
    assert parse_metadata('{"notes": "ok"}') == {"notes": "ok"}


def test_each_reference_says_where_it_is_used_inspiration_included(visitor: Reader, full_seed: Path) -> None:
    references = {r["id"]: r for r in visitor.get("/api/references").json()}
    usage = query(full_seed, "SELECT reference_id, exercise_id, usage_type FROM content_sources")
    assert sum(len(r["used_in"]) for r in references.values()) == len(usage)
    # "Inspiration" sources are shown next to no exercise: the credits page is where they appear.
    assert "inspiration" in {u["usage_type"] for u in references["schein-1985"]["used_in"]}
    order = {row[0]: row[1] for row in query(full_seed, "SELECT full_exercise_id, sequence_order FROM exercise_sequence")}
    for reference in references.values():
        places = [order[u["exercise_id"]] for u in reference["used_in"]]
        assert places == sorted(places), reference["id"]


def test_reference_data_needs_no_session_and_is_the_same_with_one(visitor: Reader, new_reader) -> None:
    reader = new_reader()
    reader.start()
    for path in ("/api/personality-types", "/api/competencies", "/api/references"):
        anonymous = visitor.get(path)
        assert anonymous.status_code == 200, path
        assert reader.get(path).json() == anonymous.json()
        assert anonymous.headers["cache-control"] == "no-store"


def test_a_forged_cookie_does_not_stop_the_credits_page(visitor: Reader) -> None:
    visitor.set_session_cookie("forged")
    assert visitor.get("/api/references").status_code == 200


def test_each_list_is_one_read_job(visitor: Reader, db_jobs: JobLog) -> None:
    for path in ("/api/personality-types", "/api/competencies", "/api/references"):
        db_jobs.clear()
        assert visitor.get(path).status_code == 200
        assert db_jobs.kinds() == ["read"], path


def test_a_seed_run_by_another_process_shows_at_once(visitor: Reader, full_seed: Path) -> None:
    before = {t["code"]: t for t in visitor.get("/api/personality-types").json()}
    query(full_seed, "UPDATE personality_types SET name = 'The Spark' WHERE code = 'ENFP'")
    after = {t["code"]: t for t in visitor.get("/api/personality-types").json()}
    assert before["ENFP"]["name"] != "The Spark" and after["ENFP"]["name"] == "The Spark"


def test_the_reference_queries_read_no_table_twice(conn: sqlite3.Connection) -> None:
    # The levels and the usage lists come from one query each, not one per competency or reference.
    for name in ("list_personality_types", "list_competencies", "list_competency_levels", "list_references",
                 "list_reference_usage"):
        plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q[name]))
        assert "CORRELATED" not in plan, (name, plan)
    plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q.list_reference_usage))
    assert "USING INDEX sqlite_autoindex_exercise_sequence_1" in plan or "PRIMARY KEY" in plan, plan


def test_two_readers_get_the_same_lists_and_nothing_of_their_own(visitor: Reader, new_reader) -> None:
    ann, ben = new_reader(), new_reader()
    ann.start()
    ben.start()
    assert ann.patch("/api/settings", {"personality_type": "ENFP"}).status_code == 200
    assert ann.put("/api/competencies/scores", {"scores": [{"competency_id": "influencing", "score": 5}]}).status_code == 200
    for path in ("/api/personality-types", "/api/competencies", "/api/references"):
        assert ann.get(path).json() == ben.get(path).json() == visitor.get(path).json(), path


def test_each_list_is_one_read_batch_for_nobody_in_particular(visitor: Reader, new_reader, db_jobs: JobLog) -> None:
    reader = new_reader()
    reader.start()
    for who in (visitor, reader):  # with or without a session: no session is read
        for path in ("/api/personality-types", "/api/competencies", "/api/references"):
            db_jobs.clear()
            assert who.get(path).status_code == 200
            assert db_jobs.seen == [("read", "app.domain.reference")], path


def test_usage_types_are_the_seeds() -> None:
    from typing import get_args

    from app.domain.reference import UsageType
    from app.domain.seeding.shapes import USAGE_TYPES

    assert get_args(UsageType) == USAGE_TYPES


# --- the health check: also for nobody in particular -------------------------------------------


def test_the_health_check_is_one_read_batch_without_a_session(visitor: Reader, db_jobs: JobLog) -> None:
    db_jobs.clear()
    response = visitor.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "schema_version": 1}
    assert db_jobs.seen == [("read", "app.domain.health")]


def test_the_schema_version_is_the_newest_migration_number(conn: sqlite3.Connection) -> None:
    from app.db import migrations

    assert conn.execute(Q.schema_version).fetchone()[0] == migrations.schema_version(conn) == 1
    conn.execute("INSERT INTO d1_migrations (name) VALUES ('0012_later.sql'), ('0003_between.sql')")
    assert conn.execute(Q.schema_version).fetchone()[0] == migrations.schema_version(conn) == 12


# --- the API contract comes from the code ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "shape"),
    [
        ("get", "/healthz", "200", "Health"),
        ("get", "/api/daily-dos", "200", ["DailyDo"]),
        ("get", "/api/competencies/scores", "200", ["CompetencyScore"]),
        ("put", "/api/competencies/scores", "200", ["CompetencyScore"]),
        ("get", "/api/competencies/summary", "200", "CompetencySummary"),
        ("get", "/api/settings", "200", "ReaderSettings"),
        ("patch", "/api/settings", "200", "ReaderSettings"),
        ("get", "/api/personality-types", "200", ["PersonalityType"]),
        ("get", "/api/competencies", "200", ["Competency"]),
        ("get", "/api/references", "200", ["Reference"]),
        ("get", "/api/skills", "200", ["Skill"]),
        ("post", "/api/skills", "201", "Skill"),
    ],
)
def test_every_answer_has_a_declared_shape(client, method: str, path: str, status: str, shape: Any) -> None:
    document = client.get("/schema/openapi.json").json()
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    if isinstance(shape, list):
        assert schema["type"] == "array"
        schema, shape = schema["items"], shape[0]
    assert schema == {"$ref": f"#/components/schemas/{shape}"}
    component = document["components"]["schemas"][shape]
    assert component["type"] == "object" and component["properties"]


def test_enumerations_are_enumerated_in_the_contract(client) -> None:
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]

    def enum(schema: dict[str, Any]) -> list[Any]:
        for option in schema.get("oneOf", [schema]):
            if "enum" in option:
                return sorted(value for value in option["enum"] if value is not None)
        raise AssertionError(schema)

    assert enum(schemas["ReaderSettings"]["properties"]["font"]) == sorted(FONTS)
    assert enum(schemas["Skill"]["properties"]["review_status"]) == ["approved", "pending", "rejected"]
    assert enum(schemas["Competency"]["properties"]["category"]) == ["delivery", "interpersonal", "strategic"]
