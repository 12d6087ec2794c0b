"""No tracked text file points at a file of this repository that is not there.

A mention of a repository path (a folder of the repository followed by a file, a sibling
repository's `../shared/…`, a research note, or a bare upper-case document name such as
`NAME.md`) must name a file or folder that exists, or one git ignores (what a run makes:
node_modules/, .wrangler/). Paths with `*` must match at least one file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = r"(?:\.\./shared|app|docs|tests|bench|seed|migrations|research|wrangler-compat|\.ci)"
PATH = re.compile(rf"(?<![\w./-])({TOP}/[\w./*-]*[\w*])")
BARE = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_-]*\.md)\b")
# This file names missing paths on purpose; the lock file names npm packages, not our files.
SKIPPED = {"tests/test_repository_paths.py", "wrangler-compat/package-lock.json"}


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and name not in SKIPPED]


def _ignored(paths: set[str]) -> set[str]:
    """The paths git ignores, as files or (a path that is not there may be either) as folders."""
    if not paths:
        return set()
    asked = [*paths, *(f"{path}/" for path in paths)]
    found = subprocess.run(["git", "check-ignore", "--no-index", "--stdin", "-z"], cwd=ROOT,
                           input="\0".join(asked).encode(), capture_output=True).stdout
    return {name.rstrip("/") for name in found.decode().split("\0") if name}


def _exists(ref: str, mentioned_in: Path) -> bool:
    if ref.startswith(("../", "research/")):
        return False
    if "/" not in ref:  # a bare document name: at the root or beside the file that names it
        return (ROOT / ref).exists() or (mentioned_in.parent / ref).exists()
    return any(ROOT.glob(ref)) if "*" in ref else (ROOT / ref).exists()


def missing_mentions() -> set[tuple[str, str]]:
    """(file, mentioned path) for every mention of a repository path that is not there."""
    found: set[tuple[str, str]] = set()
    for name in _tracked():
        path = ROOT / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # a font, an image; or deleted in the work tree
        for ref in {m.group(1) for m in PATH.finditer(text)} | {m.group(1) for m in BARE.finditer(text)}:
            if not _exists(ref, path):
                found.add((name, ref))
    ignored = _ignored({ref for _, ref in found if not ref.startswith(("../", "research/")) and "/" in ref})
    return {(name, ref) for name, ref in found if ref not in ignored}


def test_every_mentioned_repository_path_exists() -> None:
    missing = sorted(missing_mentions())
    assert not missing, "files mention repository paths that do not exist:\n" + "\n".join(
        f"{n}: {r}" for n, r in missing)


def test_the_check_sees_a_missing_path(tmp_path: Path) -> None:
    # The patterns themselves: what they take for a path, and where a path ends.
    line = "see docs/nothing-here.md, app/x/y.py: and research/z.md or ../shared/A.md; NOTES.md."
    assert [m.group(1) for m in PATH.finditer(line)] == [
        "docs/nothing-here.md", "app/x/y.py", "research/z.md", "../shared/A.md"]
    assert [m.group(1) for m in BARE.finditer(line)] == ["NOTES.md"]
    assert not _exists("docs/nothing-here.md", ROOT / "README.md")
    assert _exists("docs/spec/dreamtree-schema.md", ROOT / "README.md")
    assert _exists("app/sql/*.sql", ROOT / "README.md")
    assert _exists("README.md", ROOT / "bench" / "load.py")
