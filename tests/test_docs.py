"""Docs as tests: every command and setting the code has is in the README."""

from __future__ import annotations

import re
from pathlib import Path

import click

from app.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "dreamtree") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix} {name}")
        else:
            found.append(f"{prefix} {name}")
    return found


def test_every_command_is_in_the_readme() -> None:
    for command in commands(main):
        assert f"`{command}" in README, f"{command} is not documented in README.md"


def test_every_environment_setting_is_in_the_readme() -> None:
    source = (ROOT / "app" / "config.py").read_text(encoding="utf-8")
    for name in set(re.findall(r'"(DREAMTREE_[A-Z0-9_]+)"', source)):
        assert name in README, f"{name} is not documented in README.md"


def test_readme_opens_with_the_two_commands() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    assert blocks[:2] == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/dreamtree serve",
        "bash .ci/run",
    ]
    assert README.index("```sh") < README.index("## ")
