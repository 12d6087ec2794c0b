"""Decoding off the event loop: types msgspec meets first on several threads at once.

msgspec builds a Struct type's decoding information on first use; threads that use a type for
the first time at the same moment could see it half built, and the process died (SIGSEGV in
msgspec's `convert`; seen when eight imports reached a fresh `serve` at once). Each run is a
fresh process, so every type is new to it; a tiny switch interval makes the threads interleave.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_portability import spec_example

ROOT = Path(__file__).resolve().parents[1]

RACE = """
import json, sys, threading
sys.setswitchinterval(1e-6)
from app.domain import tool_shapes
from app.domain.portability.document import decode_document
doc = json.loads(sys.stdin.read())
start = threading.Barrier(16)

def decode(i):
    start.wait()
    decode_document(doc)
    tool_shapes.validate_content("list-builder", {"title": f"t{i}", "items": ["a"]})

threads = [threading.Thread(target=decode, args=(i,)) for i in range(16)]
for t in threads: t.start()
for t in threads: t.join()
"""


@pytest.mark.slow
def test_sixteen_threads_decoding_an_import_at_once_in_a_fresh_process_never_crash_it() -> None:
    document = json.dumps(spec_example())
    for run in range(12):
        done = subprocess.run([sys.executable, "-c", RACE], input=document, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"run {run}: exit {done.returncode}\n{done.stderr[-2000:]}"
        assert done.stderr == "", done.stderr  # no thread failed either
