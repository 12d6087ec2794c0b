"""The password policy (NIST SP 800-63B-4's): length, a blocklist, nothing else.

At least 15 characters and at most 256 (code points, after NFKC), no composition rules, no
truncation. Refused: the common and breached passwords in app/data/common-passwords.txt, and
passwords made of the product's name, the user's own email address, a single repeated
character or a keyboard or number run. Each refusal says why, so a person can pick better.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from app.domain.errors import Invalid

MIN_LENGTH = 15
MAX_LENGTH = 256
BLOCKLIST = Path(__file__).resolve().parents[1] / "data" / "common-passwords.txt"
_RUNS = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "01234567890", "1q2w3e4r5t6y7u8i9o0p")
_CONTEXT_WORDS = ("dreamtree", "dream tree", "workbook", "career")


@cache
def common_passwords() -> frozenset[str]:
    lines = BLOCKLIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _is_run(text: str) -> bool:
    """Runs along the alphabet, the keyboard or the digits, forwards or backwards, repeated or not."""
    squashed = _squash(text)
    if len(set(squashed)) <= 2:
        return True
    for run in _RUNS:
        for source in (run, run[::-1]):
            doubled = source * 4
            if squashed in doubled:
                return True
    return False


def check_password(password: str, *, email: str | None = None) -> str:
    """The password as it will be hashed (NFKC), or Invalid with the reason."""
    normalized = unicodedata.normalize("NFKC", password)
    length = len(normalized)
    if length < MIN_LENGTH:
        raise Invalid(
            f"Choose a password of at least {MIN_LENGTH} characters (this one has {length}). "
            "A few unrelated words make a long password that is easy to remember.",
            code="password_too_short",
        )
    if length > MAX_LENGTH:
        raise Invalid(f"Passwords can be at most {MAX_LENGTH} characters.", code="password_too_long")
    squashed = _squash(normalized)
    if normalized.lower() in common_passwords() or squashed in common_passwords():
        raise Invalid("This password is on a list of common passwords that attackers try first.", code="password_common")
    if _is_run(normalized):
        raise Invalid("This password is a run of keys or a repeated character; attackers try those first.", code="password_common")
    context = [_squash(w) for w in _CONTEXT_WORDS]
    if email:
        local = email.split("@", 1)[0]
        context += [_squash(local), _squash(email)]
    for word in filter(None, context):
        rest = squashed.replace(word, "")
        if len(rest) < 6 or _is_run(rest):
            raise Invalid("This password is mostly your email address or the product's name.", code="password_guessable")
    for common in common_passwords():
        if len(common) >= 6 and squashed.startswith(common) and (squashed[len(common):].isdigit() or squashed == common * (len(squashed) // len(common))):
            raise Invalid("This password is a common password with numbers added or repeated.", code="password_common")
    return normalized
