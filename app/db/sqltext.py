"""SQL text with values written in: for files that wrangler runs (seed SQL, whole-database dumps).

Values are rendered the way `wrangler d1 export` writes them, so the files replay on D1 and on
sqlite3 alike: strings single-quoted, line breaks through replace(…, marker, char(10)) so no
statement carries a raw newline inside a string, BLOBs as X'..', integers exact.

`render` turns a statement with `?`/`?N` parameters (a named query from app/sql, comments and
line breaks included) into one line of SQL with its values written in.
"""

from __future__ import annotations

from collections.abc import Sequence

SqlValue = str | int | float | bytes | bytearray | memoryview | None


def sql_literal(value: SqlValue) -> str:
    """A value as an SQL literal. Line breaks go through replace(…, marker, char(10)), as in
    `wrangler d1 export`, so no statement carries a raw newline inside a string."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex() + "'"
    text = str(value)
    quoted = "'" + text.replace("'", "''") + "'"
    for char, code in (("\n", 10), ("\r", 13)):
        if char in text:
            marker = next(m for m in ("\\n" if code == 10 else "\\r", "<br-%d>" % code, "\x7f%d\x7f" % code) if m not in text)
            quoted = "replace(" + quoted.replace(char, marker) + ",'" + marker + "',char(" + str(code) + "))"
    return quoted


def _quoted_end(sql: str, start: int) -> int:
    """The index just past the quoted token opening at `start` ('…', "…", `…` or […])."""
    close = "]" if sql[start] == "[" else sql[start]
    at = start + 1
    while True:
        end = sql.find(close, at)
        if end < 0:
            raise ValueError(f"unterminated {sql[start]} in SQL")
        if close != "]" and sql.startswith(close * 2, end):
            at = end + 2  # a doubled quote stands for itself
            continue
        return end + 1


def render(sql: str, params: Sequence[SqlValue] = ()) -> str:
    """`sql` as one line ending in `;`, its `?` / `?N` parameters replaced by literals.

    Comments go, runs of white space become one space; quoted strings and identifiers are
    kept as they are (a raw line break inside one is refused: the line would break)."""
    out: list[str] = []
    space = False
    highest = 0
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            end = _quoted_end(sql, i)
            token = sql[i:end]
            if "\n" in token or "\r" in token:
                raise ValueError("a quoted token in the SQL spans lines")
            i = end
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
            space = True
            continue
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close < 0 else close + 2
            space = True
            continue
        elif ch.isspace():
            i += 1
            space = True
            continue
        elif ch == "?":
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            number = int(sql[i + 1 : j]) if j > i + 1 else highest + 1
            if not 1 <= number <= len(params):
                raise ValueError(f"parameter ?{number} has no value ({len(params)} given)")
            highest = max(highest, number)
            token = sql_literal(params[number - 1])
            i = j
        else:
            token = ch
            i += 1
        if space and out:
            out.append(" ")
        space = False
        out.append(token)
    if highest != len(params):
        raise ValueError(f"{len(params)} values for {highest} parameters")
    text = "".join(out).rstrip(";").rstrip()
    return text + ";"
