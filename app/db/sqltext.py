"""SQL text with values written in: for files that wrangler runs (seed SQL, whole-database dumps).

Values are rendered the way `wrangler d1 export` writes them, so the files replay on D1 and on
sqlite3 alike: strings single-quoted, line breaks through replace(…, marker, char(10)) so no
statement carries a raw newline inside a string, BLOBs as X'..', integers exact.
"""

from __future__ import annotations

from typing import Any


def sql_literal(value: Any) -> str:
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
