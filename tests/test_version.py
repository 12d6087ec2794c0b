"""One version number, from app/__init__.py: the package, --version, the OpenAPI document
and the API changelog all say the same."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner
from litestar.testing import TestClient

from app import __version__
from app.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_package_and_the_command_say_the_same_version() -> None:
    assert version("dreamtree-store") == __version__
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"dreamtree, version {__version__}"


def test_the_openapi_document_carries_the_version(client: TestClient) -> None:
    assert client.get("/schema/openapi.json").json()["info"]["version"] == __version__


def test_the_changelog_ends_with_this_version() -> None:
    changelog = README.read_text(encoding="utf-8").split("## API changelog", 1)[1]
    entries = re.findall(r"^- (\d+\.\d+\.\d+):", changelog, flags=re.M)
    assert entries and entries[-1] == __version__
