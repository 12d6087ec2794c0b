"""A database at scale: N readers with realistic workbooks, for the scale and load benchmarks.

    .venv/bin/python bench/dataset.py --users 100000 --out /tmp/dt-100k   [--active 2000]

Writes `<out>/dreamtree.db` (the exact schema, migrated and seeded with the sample workbook)
and `<out>/active.json`: the cookies of `--active` readers whose rows are sealed under their
real data keys, so the server can open them. Every other reader's answers and tool entries are
envelopes of realistic size under keys nobody holds: they fill the tables and indexes exactly
like real rows, but sealing four million values would take longer than the benchmark itself.

Shape per reader (averages at the defaults): ~30 of the 41 sample exercises answered
(progress skews towards the end, as in a workbook people keep using), module rows for the
modules they completed, ~10 tool entries of the tools they unlocked spread over the last 90
days, 15 competency scores for those who reached the assessment, a session or two, a third
of them claimed (email, auth row), 1 in 20 with a custom skill. At 100,000 readers that is
~3 M answers and ~1 M tool entries, the shape a workbook in steady use has).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import time
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.db import migrations  # noqa: E402
from app.db.connection import connect_sync  # noqa: E402
from app.domain import keys, seeding, sessions  # noqa: E402
from app.timeutil import iso  # noqa: E402

# The benchmarks start the server with this secret, so the cookies written here open.
BENCH_SECRET = "5eed" * 16
NOW = datetime.now(timezone.utc)

ANSWER = {"text": "I spent four years coordinating volunteers at the food bank, which taught me more "
                  "about planning under pressure than any job title. What stands out: the Saturday "
                  "we ran out of vans and found a way anyway."}
TOOL_CONTENT: dict[str, dict[str, Any]] = {
    "list-builder": {"title": "Roles I have held", "items": ["Volunteer coordinator", "Barista", "Team lead"]},
    "flow-tracker": {"activity": "Drafting the quarterly plan", "energy": 4, "focus": 5, "notes": "Lost track of time."},
    "failure-reframer": {"situation": "The pitch was turned down", "reframe": "I learned what they value"},
    "budget-calculator": {"month": "2026-10", "income": [{"label": "Salary", "amount": 3200}],
                          "expenses": [{"label": "Rent", "amount": 1200, "essential": True}]},
    "soared-story": {"title": "The van shortage", "situation": "Saturday distribution", "obstacle": "No vans",
                     "action": "Borrowed trucks", "result": "Everyone fed", "evaluation": "Calm helped",
                     "discovery": "I like logistics"},
    "ranking-grid": {"title": "What matters most", "items": ["Autonomy", "Team", "Pay"]},
    "idea-tree": {"root": "Work with food", "branches": [{"idea": "Logistics", "leaves": ["Cold chain"]}]},
    "networking-prep": {"contact_name": "Sam", "goal": "Learn about supply-chain roles"},
    "resume-builder": {"headline": "Operations coordinator", "summary": "Calm under pressure."},
    "job-prospector": {"organization": "Harvest Co-op", "role": "Logistics lead", "status": "applied"},
}


def stamp(days_ago: float) -> str:
    return iso(NOW - timedelta(days=days_ago))


def fake_envelope(rng: random.Random, size: int) -> str:
    """An envelope of a sealed value of `size` bytes: same shape and length as the real thing."""
    return json.dumps({"$enc": "1", "k": base64.urlsafe_b64encode(rng.randbytes(12)).decode().rstrip("="),
                       "n": base64.urlsafe_b64encode(rng.randbytes(12)).decode().rstrip("="),
                       "c": base64.urlsafe_b64encode(rng.randbytes(size + 16)).decode().rstrip("=")},
                      separators=(",", ":"))


def build(out: Path, users: int, active: int, seed: int = 7) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dreamtree.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rng = random.Random(seed)
    server = sessions.ServerKeys.derive(bytes.fromhex(BENCH_SECRET), argon2=keys.Argon2Params.FAST)
    started = time.perf_counter()
    with closing(connect_sync(path, strict=False)) as conn:
        migrations.apply(conn)
        seeding.seed(conn)
        conn.execute("PRAGMA synchronous = OFF")
        places = conn.execute("SELECT * FROM exercise_sequence ORDER BY sequence_order").fetchall()
        required_by_module: dict[str, set[int]] = {}
        for p in places:
            if p["is_required"]:
                required_by_module.setdefault(f"{p['part_id']}.{p['module_id']}", set()).add(p["sequence_order"])
        unlock_at = {p["unlocks_tool"]: p["sequence_order"] for p in places if p["unlocks_tool"]}
        competency_ids = [r[0] for r in conn.execute("SELECT id FROM competencies")]
        master_skills = [r[0] for r in conn.execute("SELECT id FROM skills")]
        assessment_at = len(places) // 2  # readers past the middle have rated their competencies
        sample_answer = len(keys.canonical_json(ANSWER))
        cookies: list[dict[str, str]] = []
        rows: dict[str, list[tuple[Any, ...]]] = {}

        def flush() -> None:
            sql = {
                "users": "INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                "user_settings": "INSERT INTO user_settings VALUES (?, ?, ?, ?, ?, ?, ?)",
                "sessions": "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                "emails": "INSERT INTO emails VALUES (?, ?, ?, ?, ?)",
                "auth": "INSERT INTO auth VALUES (?, ?, ?, ?, ?, ?, ?)",
                "exercise_responses": "INSERT INTO exercise_responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                "user_modules": "INSERT INTO user_modules VALUES (?, ?, ?, ?)",
                "tool_instances": "INSERT INTO tool_instances VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                "user_competency_scores": "INSERT INTO user_competency_scores VALUES (?, ?, ?, ?, ?)",
                "skills": "INSERT INTO skills VALUES (?, ?, ?, ?, ?, ?, ?)",
                "exercise_skills": "INSERT INTO exercise_skills VALUES (?, ?, ?, ?)",
            }
            conn.execute("BEGIN")
            for table, batch in rows.items():
                conn.executemany(sql[table], batch)
            conn.execute("COMMIT")
            rows.clear()

        def add(table: str, *values: Any) -> None:
            rows.setdefault(table, []).append(values)

        for n in range(users):
            uid = str(uuid.uuid4())
            is_active = n < active
            dek = keys.new_data_key() if is_active else None
            joined = rng.uniform(30, 400)
            claimed = rng.random() < 0.33 or is_active and n % 2 == 0
            add("users", uid, 0 if claimed else 1, 0, stamp(joined), stamp(joined / 2))
            add("user_settings", uid, "cream", "charcoal", "system", None, stamp(joined), stamp(joined))
            if claimed:
                add("emails", str(uuid.uuid4()), uid, f"reader{n}@example.com", 1, stamp(joined))
                add("auth", str(uuid.uuid4()), uid, "password", "$dt-a2id-hkdf$v=1$bench", "{}", stamp(joined), stamp(joined))
            # Progress: the answered prefix of the sequence, skewed towards the end.
            reached = min(len(places), int(len(places) * rng.random() ** 0.37 + 0.5))
            if is_active:
                reached = max(reached, 1)  # every active reader has unlocked at least the List tool
            answered = set()
            for p in places[:reached]:
                rid = str(uuid.uuid4())
                if is_active:
                    assert dek is not None
                    sealed = keys.seal_column(dek, ANSWER, table="exercise_responses", row_id=rid)
                else:
                    sealed = fake_envelope(rng, sample_answer)
                add("exercise_responses", rid, uid, p["part_id"], p["module_id"], p["exercise_id"], p["version"],
                    p["full_exercise_id"], sealed, stamp(joined * (1 - p["sequence_order"] / (len(places) + 1))))
                answered.add(p["sequence_order"])
                if rng.random() < 0.05:
                    add("exercise_skills", str(uuid.uuid4()), rid, rng.choice(master_skills), stamp(1))
            for module, needed in required_by_module.items():
                if needed <= answered:
                    add("user_modules", uid, module, stamp(joined / 2), stamp(joined / 3))
            unlocked = [t for t, at in unlock_at.items() if at <= reached]
            for _ in range(int(rng.expovariate(1 / 10)) if unlocked else 0):
                tool = rng.choice(unlocked)
                tid = str(uuid.uuid4())
                if is_active:
                    assert dek is not None
                    content = TOOL_CONTENT[tool]
                    sealed = keys.seal_column(dek, content, table="tool_instances", row_id=tid)
                    digest = keys.content_hash(dek, {**content, "n": tid})
                else:
                    sealed, digest = fake_envelope(rng, 180), rng.randbytes(32).hex()
                when = stamp(rng.uniform(0, 90))
                add("tool_instances", tid, uid, tool, "standalone", sealed, digest, when, when)
            if reached > assessment_at:
                for cid in competency_ids:
                    add("user_competency_scores", str(uuid.uuid4()), uid, cid, rng.randint(1, 5), stamp(rng.uniform(1, 500)))
            if rng.random() < 0.05:
                add("skills", str(uuid.uuid4()), f"Custom skill {n}", "knowledge", 1, uid, "pending", stamp(2))
            sessions_count = 2 if claimed and rng.random() < 0.3 else 1
            for s in range(sessions_count):
                if is_active and s == 0:
                    token = keys.new_session_token()
                    sid = keys.session_id(token)
                    cookie = keys.seal_cookie(server.cookie, token, user_id=uid, dek=dek)  # type: ignore[arg-type]
                    cookies.append({"user_id": uid, "cookie": cookie, "reached": str(reached),
                                    "last_answered": places[reached - 1]["full_exercise_id"]})
                    add("sessions", sid, uid, stamp(1), iso(NOW))
                else:
                    add("sessions", str(uuid.uuid4()), uid, stamp(joined), stamp(rng.uniform(0, 30)))
            if n % 2000 == 1999:
                flush()
        flush()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("ANALYZE")
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                  for t in ("users", "exercise_responses", "tool_instances", "user_competency_scores", "sessions")}
    (out / "active.json").write_text(json.dumps({"secret": BENCH_SECRET, "readers": cookies}))
    counts["seconds"] = round(time.perf_counter() - started, 1)
    counts["bytes"] = path.stat().st_size
    return counts


def ensure(out: Path, users: int, active: int) -> dict[str, Any]:
    """Build once and reuse: the dataset is rebuilt only when its size or the schema changed."""
    marker = out / "dataset.json"
    wanted = {"users": users, "active": active, "migrations": sorted(p.name for p in migrations.MIGRATIONS_DIR.glob("*.sql"))}
    if marker.exists() and (out / "dreamtree.db").exists() and json.loads(marker.read_text()).get("wanted") == wanted:
        return json.loads(marker.read_text())["counts"]
    counts = build(out, users, active)
    marker.write_text(json.dumps({"wanted": wanted, "counts": counts}))
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "dreamtree-bench")
    args = parser.parse_args()
    print(json.dumps(build(args.out, args.users, args.active), indent=2))
