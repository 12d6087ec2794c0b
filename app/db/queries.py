"""Named SQL queries, read once from `app/sql/*.sql`.

Each file holds queries under `-- name: verb_noun` headers, with `?` / `?NNN` placeholders only
(D1 binds no named parameters). The text stays readable SQL (the spec's queries recognisable)
and is loaded once into a read-only map: `Q.next_exercise`, or `Q["next_exercise"]`.
A test prepares every query against the migrated schema in D1-strict mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
_HEADER = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_]*)\s*$", re.M)


class Queries(Mapping[str, str]):
    def __init__(self, directory: Path = SQL_DIR) -> None:
        self._queries: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        for path in sorted(directory.glob("*.sql")):
            text = path.read_text(encoding="utf-8")
            parts = _HEADER.split(text)
            for name, body in zip(parts[1::2], parts[2::2]):
                sql = body.strip()
                if name in self._queries:
                    raise ValueError(f"{path.name}: query {name} is also defined in {self._origin[name]}")
                if not sql:
                    raise ValueError(f"{path.name}: query {name} is empty")
                self._queries[name] = sql
                self._origin[name] = path.name

    def __getitem__(self, name: str) -> str:
        return self._queries[name]

    def __getattr__(self, name: str) -> str:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)

    def origin(self, name: str) -> str:
        return self._origin[name]


Q = Queries()
