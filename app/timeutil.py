"""One canonical timestamp form everywhere: UTC `YYYY-MM-DDTHH:MM:SS.sssZ`.

Mixed precision would break the string ordering the spec's queries rely on, so every
timestamp the service writes or accepts goes through `iso()` / `normalize()`.
"""

from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: timestamps must carry a time zone")
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(now())


def parse(text: str) -> datetime:
    """Any ISO 8601 timestamp with a zone (Z or ±HH:MM) → an aware datetime in UTC; ValueError
    otherwise (the one parser: stored timestamps and timestamps from outside alike).

    ValueError also for a moment that exists in its own zone but not in UTC's range of years
    (`0001-01-01T00:00:00+14:00`, `9999-12-31T23:59:59-14:00`): Python raises OverflowError
    for those, which callers would not expect from a parse."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"timestamp outside the years 1 to 9999 once in UTC: {text!r}") from None


def normalize(text: str) -> str:
    """Any ISO 8601 timestamp with a zone → the canonical form; ValueError otherwise (`parse`)."""
    return iso(parse(text))
