"""dreamtree export / import: the same export and merge, for claimed accounts, from the shell."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from tests.helpers import PASSWORD, Reader

ENV = {"DREAMTREE_ARGON2": "fast"}


def test_cli_export_then_import_into_another_account(seeded: Path, new_reader, tmp_path: Path) -> None:
    ann: Reader = new_reader()
    ann.start()
    ann.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "from the shell"}})
    ann.claim("ann@example.com")
    out = tmp_path / "ann.json"
    result = CliRunner().invoke(main, ["export", "--db", str(seeded), "--user", "ann@example.com", "--password-stdin", str(out)],
                                input=PASSWORD + "\n", env=ENV)
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["encrypted"] is True and "from the shell" not in out.read_text()
    bob: Reader = new_reader()
    bob.start()
    bob.claim("bob@example.com", PASSWORD)
    dry = CliRunner().invoke(main, ["import", "--db", str(seeded), "--user", "bob@example.com", "--password-stdin",
                                    "--dry-run", str(out)], input=PASSWORD + "\n", env=ENV)
    assert dry.exit_code == 0 and "dry run" in dry.output
    assert bob.get("/api/exercises/1.1.1.v1").json()["response"] is None
    real = CliRunner().invoke(main, ["import", "--db", str(seeded), "--user", "bob@example.com", "--password-stdin", str(out)],
                              input=PASSWORD + "\n", env=ENV)
    assert real.exit_code == 0, real.output
    assert "exercises          inserted     1" in real.output
    assert bob.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "from the shell"}


def test_cli_wrong_password_is_one_line(seeded: Path, new_reader, tmp_path: Path) -> None:
    ann: Reader = new_reader()
    ann.start()
    ann.claim("ann@example.com")
    result = CliRunner().invoke(main, ["export", "--db", str(seeded), "--user", "ann@example.com", "--password-stdin",
                                       str(tmp_path / "x.json")], input="wrong password entirely\n", env=ENV)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "dreamtree: error: The email or password is not right."
    assert not (tmp_path / "x.json").exists()


def test_cli_import_of_a_file_over_a_limit_is_one_line_and_writes_nothing(seeded: Path, new_reader,
                                                                          tmp_path: Path) -> None:
    bob: Reader = new_reader()
    bob.start()
    bob.claim("bob@example.com")
    entries = [{"id": f"t{i}", "tool_type": "list-builder", "origin": "standalone", "content_json": {"title": f"L{i}"},
                "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T10:00:00Z"} for i in range(1001)]
    file = tmp_path / "big.json"
    file.write_text(json.dumps({"version": "1.1", "exported_at": "2026-06-01T00:00:00Z", "tool_instances": entries}))
    result = CliRunner().invoke(main, ["import", "--db", str(seeded), "--user", "bob@example.com", "--password-stdin",
                                       str(file)], input=PASSWORD + "\n", env=ENV)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("dreamtree: error: Importing this would give you 1001")
    assert bob.get("/api/tools/list-builder/instances").json() == []
