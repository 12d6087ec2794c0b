"""The requests an outside review found answering 500, against a real server (marker `hostile`).

Each used to fail on our side (an OverflowError, a KeyError, a dict built from colliding
keys) although nothing was written. Each must now be a 4xx problem with a reason, and the
reader's workbook must be as it was.
"""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.servers import free_port
from tests.test_hostile_input import _start, check_answer

pytestmark = pytest.mark.hostile

PRECOMPOSED, COMBINING = "\u00e9", "e\u0301"  # both read "é"; NFC makes them one key


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    proc = _start(port)
    yield f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def reader(server: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{server}/healthz", timeout=10)
    session.headers["x-csrftoken"] = session.cookies["csrftoken"]
    assert session.post(f"{server}/api/session", json={}, timeout=10).status_code == 201
    assert session.put(f"{server}/api/exercises/1.1.1.v1/response", json={"response": {"text": "mine"}},
                       timeout=10).status_code == 200
    return session


@pytest.fixture(scope="module")
def exported(server: str, reader: requests.Session) -> dict[str, Any]:
    """The reader's own (readable: anonymous) export, the base every bad file is made from."""
    answer = reader.post(f"{server}/api/export", json={}, timeout=30)
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def answer_of(document: dict[str, Any]) -> dict[str, Any]:
    return document["modules"]["1.1"]["exercises"]["1.1.1.v1"]  # type: ignore[no-any-return]


def colliding_keys(document: dict[str, Any]) -> None:
    answer_of(document)["response_json"] = {PRECOMPOSED: 1, COMBINING: 2}


def over_a_mebibyte(document: dict[str, Any]) -> None:
    answer_of(document)["response_json"] = {"text": "x" * (1024 * 1024 + 10)}


def exercise_id(value: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        exercises = document["modules"]["1.1"]["exercises"]
        exercises[value] = exercises.pop("1.1.1.v1")
    return change


def responded_at(value: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        answer_of(document)["responded_at"] = value
    return change


def export_id(value: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["export_id"] = value
    return change


BAD_FILES = {
    "keys colliding after NFC": colliding_keys,
    "an answer over 1 MiB": over_a_mebibyte,
    "exercise id 1.1.1.vabc": exercise_id("1.1.1.vabc"),
    "exercise id with a 20-digit version": exercise_id("1.1.1.v99999999999999999999"),
    "timestamp before year 1 in UTC": responded_at("0001-01-01T00:00:00+14:00"),
    "timestamp after year 9999 in UTC": responded_at("9999-12-31T23:59:59-14:00"),
    "export_id with a dot": export_id("a.b"),
    "export_id with a dollar": export_id("a$b"),
    "export_id over 64 characters": export_id("a" * 65),
}


def test_an_answer_with_keys_colliding_after_nfc_is_a_4xx(server: str, reader: requests.Session) -> None:
    body = '{"response": {"%s": 1, "%s": 2}}' % (PRECOMPOSED, COMBINING)
    answer = reader.put(f"{server}/api/exercises/1.1.1.v1/response", data=body.encode(),
                        headers={"content-type": "application/json"}, timeout=10)
    assert 400 <= answer.status_code < 500, answer.text
    check_answer(answer)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_import_file_is_a_4xx_with_a_reason_and_changes_nothing(
        server: str, reader: requests.Session, exported: dict[str, Any], name: str) -> None:
    document = copy.deepcopy(exported)
    BAD_FILES[name](document)
    before = reader.get(f"{server}/api/exercises/1.1.1.v1", timeout=10).json()["response"]
    answer = reader.post(f"{server}/api/import", json=document, timeout=60)
    assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text[:300])
    check_answer(answer)
    assert answer.json()["detail"]
    assert reader.get(f"{server}/api/exercises/1.1.1.v1", timeout=10).json()["response"] == before
