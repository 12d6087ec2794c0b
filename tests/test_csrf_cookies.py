"""The CSRF check reads the Cookie header exactly as authentication does.

A Cookie header with one malformed pair in front (`x="y; dt_session=…`) made the check's own
parser (http.cookies) drop the whole header and see no session, while Litestar's parser,
which authentication uses, still found the session cookie: a write without the CSRF header
went through as that reader. Now both read one parse of the header, so a request that
authenticates always meets the CSRF check.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.helpers import Reader

pytestmark = pytest.mark.both_engines

ANSWER = "/api/exercises/1.1.1.v1/response"
MALFORMED = ['x="y; dt_session={session}', 'a=b; x="y; dt_session={session}', 'x="y"z; dt_session={session}',
             'x=\\"; dt_session={session}', 'x="; dt_session={session}; y="']


@pytest.fixture
def ann(seeded, new_reader) -> Reader:
    reader: Reader = new_reader()
    reader.start()
    return reader


@pytest.mark.parametrize("template", MALFORMED)
def test_a_malformed_pair_does_not_hide_the_session_from_the_csrf_check(
    ann: Reader, client: TestClient, template: str
) -> None:
    header = template.format(session=ann.session_cookie)
    # The same header authenticates (a read needs no CSRF token) ...
    me = client.get("/api/me", headers={"cookie": header})
    assert me.status_code == 200, me.text
    # ... so a write with it must meet the CSRF check.
    write = client.put(ANSWER, json={"response": {"text": "forged"}}, headers={"cookie": header})
    assert write.status_code == 403 and write.json()["code"] == "csrf_failed", write.text
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"] is None


def test_the_same_header_with_the_matching_token_still_writes(ann: Reader, client: TestClient) -> None:
    token = ann.jar.get("csrftoken")
    header = f'x="y; dt_session={ann.session_cookie}; csrftoken={token}'
    write = client.put(ANSWER, json={"response": {"text": "mine"}}, headers={"cookie": header, "x-csrftoken": token})
    assert write.status_code == 200, write.text
    assert ann.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "mine"}


def test_a_parsed_cookie_header_is_kept_but_every_request_gets_its_own_dict() -> None:
    """The parse of a Cookie header is kept (a reader sends the same one all visit); what one
    request does with its cookies never reaches the next request sending that header."""
    from app.http.csrf import cookies_of

    def scope(header: bytes) -> dict[str, object]:
        return {"type": "http", "headers": [(b"host", b"x"), (b"cookie", header)]}

    first = cookies_of(scope(b"dt_session=one; csrftoken=t"))  # type: ignore[arg-type]
    first["dt_session"] = "someone else"
    again = cookies_of(scope(b"dt_session=one; csrftoken=t"))  # type: ignore[arg-type]
    assert again == {"dt_session": "one", "csrftoken": "t"} and again is not first
    assert cookies_of(scope(b"dt_session=two"))["dt_session"] == "two"  # type: ignore[arg-type]
    assert cookies_of({"type": "http", "headers": []}) == {}  # type: ignore[arg-type]


def test_readers_taking_turns_each_stay_themselves(seeded, new_reader, client: TestClient) -> None:
    readers = [new_reader() for _ in range(2)]
    for reader in readers:
        reader.start()
    ids = [reader.get("/api/me").json()["id"] for reader in readers]
    assert ids[0] != ids[1]
    for _ in range(3):
        for reader, user_id in zip(readers, ids):
            header = f"dt_session={reader.session_cookie}"
            assert client.get("/api/me", headers={"cookie": header}).json()["id"] == user_id


def test_a_request_parses_its_cookies_once() -> None:
    """Every reader of a request's cookies (the CSRF check, the D1 bookmark, authentication)
    gets the one dict kept in its connection state."""
    from app.http.csrf import cookies_of

    scope: Any = {"type": "http", "headers": [(b"cookie", b"dt_session=one; csrftoken=t")]}
    assert cookies_of(scope) is cookies_of(scope)
