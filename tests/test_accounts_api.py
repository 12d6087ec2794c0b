"""Sessions and accounts over HTTP: every flow, its refusals, and two readers kept apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.db.connection import connect_sync
from tests.helpers import OTHER_PASSWORD, PASSWORD, Reader

pytestmark = pytest.mark.both_engines


@pytest.fixture
def reader(new_reader) -> Reader:
    r = new_reader()
    r.start()
    return r


def db_rows(db_path: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = connect_sync(db_path, strict=False)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def answer_directly(db_path: Path, user_id: str) -> None:
    conn = connect_sync(db_path, strict=False)
    try:
        conn.execute(
            "INSERT INTO exercise_responses VALUES ('r1', ?, '1', '1', '1', 1, '1.1.1.v1', '{}', '2026-01-01T00:00:00.000Z')",
            (user_id,),
        )
    finally:
        conn.close()


# --- anonymous start ------------------------------------------------------------------------


def test_start_creates_user_settings_and_session(new_reader, db_path: Path) -> None:
    r = new_reader()
    me = r.start()
    assert me["is_anonymous"] is True and me["email"] is None
    assert me["settings"] == {"background_color": "cream", "text_color": "charcoal", "font": "system", "personality_type": None}
    assert db_rows(db_path, "SELECT count(*) FROM sessions WHERE user_id = ?", (me["id"],))[0][0] == 1
    again = r.post("/api/session")
    assert again.status_code == 200 and again.json()["id"] == me["id"]


def test_session_cookie_attributes(new_reader) -> None:
    r = new_reader()
    r.get("/healthz")
    response = r.post("/api/session")
    cookie = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("dt_session=")][0]
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert len(cookie) < 4096 and "Domain" not in cookie
    assert response.headers["cache-control"] == "no-store"


def test_forged_cookie_is_ignored_never_adopted(new_reader, db_path: Path) -> None:
    r = new_reader()
    r.get("/healthz")
    r.set_session_cookie("v1.attacker-chosen-value")
    assert r.get("/api/me").status_code == 401
    response = r.post("/api/session")
    assert response.status_code == 201
    assert r.session_cookie != "v1.attacker-chosen-value"
    assert not any("attacker" in row[0] for row in db_rows(db_path, "SELECT id FROM sessions"))


def test_database_holds_no_session_token(reader: Reader, db_path: Path) -> None:
    cookie = reader.session_cookie
    token = cookie.split(".")[1]
    stored = [row[0] for row in db_rows(db_path, "SELECT id FROM sessions")]
    assert all(token not in s and s not in cookie for s in stored)
    other = Reader(reader.client)
    other.get("/healthz")
    other.set_session_cookie(stored[0])  # replaying the stored id as a cookie gets nowhere
    assert other.get("/api/me").status_code == 401


def test_no_session_is_401_problem(new_reader) -> None:
    response = new_reader().get("/api/me")
    assert response.status_code == 401
    assert response.json()["code"] == "no_session"


# --- CSRF and JSON only ----------------------------------------------------------------------


def test_state_change_with_session_needs_the_csrf_header(reader: Reader) -> None:
    missing = reader.post("/api/account/claim", {"email": "a@example.com", "password": PASSWORD}, csrf=False)
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    wrong = reader.post("/api/account/claim", {"email": "a@example.com", "password": PASSWORD},
                        headers={"x-csrftoken": "0" * 32 + "." + "0" * 32})
    assert wrong.status_code == 403
    assert reader.get("/api/me").json()["is_anonymous"] is True


def test_cross_site_and_form_posts_are_refused(new_reader) -> None:
    r = new_reader()
    r.get("/healthz")
    cross = r.post("/api/session", headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    form = r.request("POST", "/api/auth/login", content=b"email=a&password=b",
                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415


def test_bad_json_is_400_and_wrong_shape_422(reader: Reader) -> None:
    bad = reader.request("POST", "/api/account/claim", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_json"
    unknown = reader.post("/api/account/claim", {"email": "a@example.com", "password": PASSWORD, "admin": True})
    assert unknown.status_code == 422 and unknown.json()["code"] == "validation_failed"


# --- claim ----------------------------------------------------------------------------------------


def test_claim_saves_the_workbook_and_rotates_the_session(reader: Reader, db_path: Path) -> None:
    before = reader.session_cookie
    me_before = reader.get("/api/me").json()
    body = reader.claim("  Ann@Example.COM ")
    assert body["user"]["id"] == me_before["id"] and body["user"]["is_anonymous"] is False
    assert body["user"]["email"] == "ann@example.com"
    assert len(body["recovery_code"].replace("-", "")) >= 26
    assert reader.session_cookie != before
    stale = Reader(reader.client)
    stale.get("/healthz")
    stale.set_session_cookie(before)
    assert stale.get("/api/me").status_code == 401
    auth = db_rows(db_path, "SELECT password_hash, wrapped_data_key FROM auth WHERE user_id = ?", (body["user"]["id"],))[0]
    assert auth["password_hash"].startswith("$dt-a2id-hkdf$v=1$")
    assert '"pw"' in auth["wrapped_data_key"] and '"rk"' in auth["wrapped_data_key"]
    assert PASSWORD not in auth["wrapped_data_key"] and body["recovery_code"] not in auth["wrapped_data_key"]
    assert db_rows(db_path, "SELECT email, is_active FROM emails")[0][:] == ("ann@example.com", 1)


def test_claim_refusals(new_reader) -> None:
    a, b = new_reader(), new_reader()
    a.start()
    b.start()
    too_short = a.post("/api/account/claim", {"email": "a@example.com", "password": "short one"})
    assert too_short.status_code == 422 and too_short.json()["code"] == "password_too_short"
    common = a.post("/api/account/claim", {"email": "a@example.com", "password": "passwordpassword"})
    assert common.json()["code"] == "password_common"
    assert a.post("/api/account/claim", {"email": "not-an-email", "password": PASSWORD}).json()["code"] == "invalid_email"
    long_ok = "moss " * 40  # 200 characters: long passwords are welcome
    assert a.post("/api/account/claim", {"email": "a@example.com", "password": long_ok}).status_code == 200
    assert a.post("/api/account/claim", {"email": "x@example.com", "password": PASSWORD}).json()["code"] == "already_claimed"
    taken = b.post("/api/account/claim", {"email": "A@example.com", "password": PASSWORD})
    assert taken.status_code == 409 and taken.json()["code"] == "email_taken"


# --- sign in ----------------------------------------------------------------------------------------


def test_login_on_another_device(reader: Reader, new_reader) -> None:
    owner = reader.claim("ann@example.com")["user"]
    phone = new_reader()
    response = phone.login("ann@example.com")
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == owner["id"]
    assert phone.get("/api/me").json()["email"] == "ann@example.com"
    devices = phone.get("/api/account/sessions").json()
    assert len(devices) == 2 and sum(d["current"] for d in devices) == 1


def test_login_failures_look_the_same(reader: Reader, new_reader) -> None:
    reader.claim("ann@example.com")
    other = new_reader()
    unknown = other.login("nobody@example.com")
    wrong = other.login("ann@example.com", "a completely wrong password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert {k for k in unknown.headers if k != "content-length"} == {k for k in wrong.headers if k != "content-length"}


def test_login_from_a_device_with_an_anonymous_workbook(reader: Reader, new_reader, db_path: Path) -> None:
    reader.claim("ann@example.com")
    laptop = new_reader()
    anonymous = laptop.start()
    answer_directly(db_path, anonymous["id"])
    asked = laptop.login("ann@example.com")
    assert asked.status_code == 409 and asked.json()["code"] == "anonymous_data_present"
    assert laptop.get("/api/me").json()["id"] == anonymous["id"]  # nothing changed
    discarded = laptop.login("ann@example.com", merge_anonymous=False)
    assert discarded.status_code == 200
    assert db_rows(db_path, "SELECT count(*) FROM users WHERE id = ?", (anonymous["id"],))[0][0] == 0


def test_empty_anonymous_workbook_is_replaced_silently(reader: Reader, new_reader, db_path: Path) -> None:
    reader.claim("ann@example.com")
    laptop = new_reader()
    anonymous = laptop.start()
    assert laptop.login("ann@example.com").status_code == 200
    assert db_rows(db_path, "SELECT count(*) FROM users WHERE id = ?", (anonymous["id"],))[0][0] == 0


def test_login_throttles_an_account_after_five_failures(reader: Reader, new_reader) -> None:
    reader.claim("ann@example.com")
    attacker = new_reader()
    for _ in range(5):
        assert attacker.login("ann@example.com", "not the password at all").status_code == 401
    attacker.login("ann@example.com", "not the password at all")
    throttled = attacker.login("ann@example.com")
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    # unknown emails are throttled exactly alike
    for _ in range(6):
        attacker.login("ghost@example.com", "not the password at all")
    assert attacker.login("ghost@example.com").status_code == 429


class Clock:
    """The throttle's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def addresses(monkeypatch: pytest.MonkeyPatch, client) -> Clock:
    """Requests say which client address they come from (`x-test-client`), and the throttle's
    clock is pinned: the test client itself always comes from one address."""
    from app.http import accounts as http_accounts

    monkeypatch.setattr(http_accounts, "client_address",
                        lambda request: request.headers.get("x-test-client", "testclient"))
    clock = Clock()
    client.app.state.throttle.clock = clock
    return clock


def sign_in_from(reader: Reader, address: str, email: str, password: str) -> object:
    if not reader.jar.get("csrftoken"):
        reader.get("/healthz")
    return reader.post("/api/auth/login", {"email": email, "password": password}, headers={"x-test-client": address})


def test_knowing_an_email_is_not_enough_to_lock_its_owner_out(reader: Reader, new_reader, addresses: Clock) -> None:
    code = reader.claim("ann@example.com")["recovery_code"]
    attacker = new_reader()
    for _ in range(5):
        assert sign_in_from(attacker, "203.0.113.9", "ann@example.com", "not the password at all").status_code == 401
    for _ in range(8):  # two hours of one try every 15 minutes
        addresses.now += 15 * 60
        assert sign_in_from(attacker, "203.0.113.9", "ann@example.com", "not the password at all").status_code in (401, 429)
        # the attacker's own address stays slowed down, even with the right password
        assert sign_in_from(new_reader(), "203.0.113.9", "ann@example.com", PASSWORD).status_code == 429
        # the owner, from their own address, gets in with the right password every time
        owner = new_reader()
        assert sign_in_from(owner, "198.51.100.7", "ann@example.com", PASSWORD).status_code == 200
    # and the recovery route with a valid code is never refused
    lost = new_reader()
    lost.get("/healthz")
    recovered = lost.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": code,
                                                   "new_password": OTHER_PASSWORD},
                          headers={"x-test-client": "192.0.2.44"})
    assert recovered.status_code == 200, recovered.text


def test_a_valid_recovery_code_is_never_throttled(reader: Reader, new_reader, addresses: Clock) -> None:
    code = reader.claim("ann@example.com")["recovery_code"]
    prober = new_reader()
    prober.get("/healthz")
    wrong = {"email": "ann@example.com", "recovery_code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A", "new_password": OTHER_PASSWORD}
    for _ in range(10):
        assert prober.post("/api/account/recover", wrong).status_code == 401
    refused = prober.post("/api/account/recover", wrong)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # the same address, the right code: in at once
    right = prober.post("/api/account/recover", {**wrong, "recovery_code": code})
    assert right.status_code == 200, right.text


def test_an_address_failing_on_many_emails_is_stopped(new_reader, addresses: Clock) -> None:
    sprayer, other = new_reader(), new_reader()
    throttle = sprayer.client.app.state.throttle
    for i in range(100):
        throttle.sign_in_failed(f"reader{i}@example.com", "203.0.113.9")
    refused = sign_in_from(sprayer, "203.0.113.9", "someone-new@example.com", "a guess of a password")
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_attempts"
    assert sign_in_from(other, "198.51.100.7", "someone-new@example.com", "a guess of a password").status_code == 401
    addresses.now += 3600
    assert sign_in_from(sprayer, "203.0.113.9", "someone-new@example.com", "a guess of a password").status_code == 401


def test_an_email_under_attack_slows_the_addresses_that_failed_on_it_never_a_new_one() -> None:
    from app.domain.errors import TooManyAttempts
    from app.domain.throttle import Throttle

    now = [0.0]
    throttle = Throttle(key=b"k" * 32, clock=lambda: now[0])
    for i in range(99):  # a hundred addresses, one guess each
        throttle.sign_in_failed("ann@example.com", f"bot-{i}")
    throttle.check_sign_in("ann@example.com", "bot-1")  # not under attack yet: a second guess is free
    throttle.sign_in_failed("ann@example.com", "bot-99")
    with pytest.raises(TooManyAttempts) as slowed:
        throttle.check_sign_in("ann@example.com", "bot-1")
    assert slowed.value.retry_after == 60
    throttle.check_sign_in("ann@example.com", "owners-phone")  # an address that never failed on it: never refused
    throttle.check_sign_in("bob@example.com", "bot-1")  # other emails are not slowed
    now[0] += 60
    throttle.check_sign_in("ann@example.com", "bot-1")
    throttle.sign_in_failed("ann@example.com", "bot-1")
    with pytest.raises(TooManyAttempts) as doubled:
        throttle.check_sign_in("ann@example.com", "bot-1")
    assert doubled.value.retry_after == 120
    throttle.sign_in_succeeded("ann@example.com", "owners-phone")  # the owner got in: the run of failures ends
    throttle.check_sign_in("ann@example.com", "bot-1")  # back to its own count: 2 of 5 free failures


def test_one_address_on_one_email_backs_off_to_fifteen_minutes_and_is_forgotten_after_a_day() -> None:
    from app.domain.errors import TooManyAttempts
    from app.domain.throttle import Throttle

    now = [0.0]
    throttle = Throttle(key=b"k" * 32, clock=lambda: now[0])
    waits = []
    for _ in range(20):
        throttle.sign_in_failed("ann@example.com", "a")
        try:
            throttle.check_sign_in("ann@example.com", "a")
            waits.append(0)
        except TooManyAttempts as refused:
            waits.append(refused.retry_after)
    assert waits[:4] == [0, 0, 0, 0] and waits[4:8] == [1, 2, 4, 8] and waits[-1] == 15 * 60
    now[0] += 24 * 3600
    throttle.check_sign_in("ann@example.com", "a")
    throttle.sign_in_failed("ann@example.com", "a")
    throttle.check_sign_in("ann@example.com", "a")  # counting starts again


# --- password, recovery, devices, logout, deletion -----------------------------------------------


def test_password_change_rewraps_and_signs_out_other_devices(reader: Reader, new_reader) -> None:
    reader.claim("ann@example.com")
    phone = new_reader()
    assert phone.login("ann@example.com").status_code == 200
    before = reader.session_cookie
    wrong = reader.post("/api/account/password", {"current_password": "not my password really", "new_password": OTHER_PASSWORD})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    ok = reader.post("/api/account/password", {"current_password": PASSWORD, "new_password": OTHER_PASSWORD})
    assert ok.status_code == 204
    assert reader.session_cookie != before and reader.get("/api/me").status_code == 200
    assert phone.get("/api/me").status_code == 401
    assert new_reader().login("ann@example.com").status_code == 401
    assert new_reader().login("ann@example.com", OTHER_PASSWORD).status_code == 200


def test_recovery_code_resets_the_password_once(reader: Reader, new_reader) -> None:
    code = reader.claim("ann@example.com")["recovery_code"]
    stranger = new_reader()
    stranger.get("/healthz")
    bad = stranger.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A", "new_password": OTHER_PASSWORD})
    assert bad.status_code == 401
    done = stranger.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": code.lower(), "new_password": OTHER_PASSWORD})
    assert done.status_code == 200, done.text
    new_code = done.json()["recovery_code"]
    assert new_code != code and done.json()["user"]["email"] == "ann@example.com"
    assert reader.get("/api/me").status_code == 401  # every other session ended
    again = new_reader()
    again.get("/healthz")
    reused = again.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": code, "new_password": PASSWORD})
    assert reused.status_code == 401
    assert again.login("ann@example.com", OTHER_PASSWORD).status_code == 200


def test_logout_kills_the_cookie(reader: Reader, new_reader, db_path: Path) -> None:
    reader.claim("ann@example.com")
    cookie = reader.session_cookie
    assert reader.delete("/api/session").status_code == 204
    replay = new_reader()
    replay.get("/healthz")
    replay.set_session_cookie(cookie)
    assert replay.get("/api/me").status_code == 401


def test_anonymous_logout_deletes_the_workbook(reader: Reader, db_path: Path) -> None:
    user_id = reader.get("/api/me").json()["id"]
    assert reader.delete("/api/session").status_code == 204
    assert db_rows(db_path, "SELECT count(*) FROM users WHERE id = ?", (user_id,))[0][0] == 0


def test_devices_are_private_to_their_account(new_reader) -> None:
    ann, bob = new_reader(), new_reader()
    ann.start()
    bob.start()
    ann.claim("ann@example.com")
    bob.claim("bob@example.com")
    bob_session = bob.get("/api/account/sessions").json()[0]["id"]
    assert all(d["id"] != bob_session for d in ann.get("/api/account/sessions").json())
    assert ann.delete(f"/api/account/sessions/{bob_session}").status_code == 404
    assert bob.get("/api/me").status_code == 200
    phone = new_reader()
    phone.login("ann@example.com")
    phone_id = [d["id"] for d in ann.get("/api/account/sessions").json() if not d["current"]][0]
    assert ann.delete(f"/api/account/sessions/{phone_id}").status_code == 204
    assert phone.get("/api/me").status_code == 401


def test_account_deletion_needs_the_password_and_cascades(reader: Reader, new_reader, db_path: Path) -> None:
    user_id = reader.claim("ann@example.com")["user"]["id"]
    answer_directly(db_path, user_id)
    assert reader.delete("/api/account", {"password": "not my password really"}).status_code == 401
    assert reader.delete("/api/account").status_code == 401
    assert reader.delete("/api/account", {"password": PASSWORD}).status_code == 204
    for t in ("users", "auth", "emails", "sessions", "user_settings", "exercise_responses"):
        column = "id" if t == "users" else "user_id"
        assert db_rows(db_path, f"SELECT count(*) FROM {t} WHERE {column} = ?", (user_id,))[0][0] == 0, t
    assert db_rows(db_path, "PRAGMA foreign_key_check") == []
    fresh = new_reader()
    fresh.start()
    assert fresh.post("/api/account/claim", {"email": "ann@example.com", "password": PASSWORD}).status_code == 200


# --- timeouts (clock pinned) ---------------------------------------------------------------------------




def test_claimed_sessions_time_out_idle_and_absolute(reader: Reader, clock, db_path: Path) -> None:
    reader.claim("ann@example.com")
    clock.advance(days=6, hours=23)
    assert reader.get("/api/me").status_code == 200  # refreshes last_seen_at
    clock.advance(days=7, seconds=1)
    expired = reader.get("/api/me")
    assert expired.status_code == 401 and expired.json()["code"] == "session_expired"
    assert db_rows(db_path, "SELECT count(*) FROM sessions")[0][0] == 0
    reader.login("ann@example.com")
    for _ in range(4):  # used every 6.5 days: never idle for 7, but 30 days is the limit
        clock.advance(days=6.5)
        assert reader.get("/api/me").status_code == 200
    clock.advance(days=4.1)
    assert reader.get("/api/me").status_code == 401


def test_anonymous_sessions_last_90_idle_days(reader: Reader, clock) -> None:
    clock.advance(days=89)
    assert reader.get("/api/me").status_code == 200
    clock.advance(days=90, seconds=1)
    assert reader.get("/api/me").status_code == 401


def test_last_seen_is_written_at_most_every_five_minutes(reader: Reader, clock, db_path: Path) -> None:
    seen = lambda: db_rows(db_path, "SELECT last_seen_at FROM sessions")[0][0]  # noqa: E731
    first = seen()
    clock.advance(minutes=4)
    reader.get("/api/me")
    assert seen() == first
    clock.advance(minutes=2)
    reader.get("/api/me")
    assert seen() > first


# --- round trips: each request is one read batch, or a read batch and one write batch ------------
#
# Flows that run Argon2 read in one work and write in another (Argon2 runs between them, never
# holding the writer): still one read batch and one write batch. Starting a workbook reads
# nothing (the user is new): one write batch.


def test_each_account_request_is_one_read_batch_and_a_change_one_more_write(new_reader, db_jobs,
                                                                            addresses: Clock) -> None:
    from app.domain import accounts

    read, write = ("read", accounts.__name__), ("write", accounts.__name__)
    ann = new_reader()
    ann.get("/healthz")
    db_jobs.clear()
    assert ann.post("/api/session").status_code == 201
    assert db_jobs.seen == [write]
    db_jobs.clear()
    assert ann.post("/api/session").status_code == 200  # resumed
    assert db_jobs.seen == [read]
    steps = [
        ("GET", "/api/me", None, 200, [read]),
        ("POST", "/api/account/claim", {"email": "ann@example.com", "password": PASSWORD}, 200, [read, write]),
        ("GET", "/api/account/sessions", None, 200, [read]),
        ("POST", "/api/account/password", {"current_password": PASSWORD, "new_password": OTHER_PASSWORD}, 204,
         [read, write]),
        ("DELETE", "/api/session", None, 204, [read, write]),
        ("POST", "/api/auth/login", {"email": "ann@example.com", "password": OTHER_PASSWORD}, 200, [read, write]),
    ]
    for method, path, body, status, batches in steps:
        db_jobs.clear()
        response = ann.request(method, path, json=body)
        assert response.status_code == status, (path, response.text)
        assert db_jobs.mine() == batches, path
    assert "merge" not in response.json()
    phone = new_reader()
    assert phone.login("ann@example.com", OTHER_PASSWORD).status_code == 200
    phone_id = [d["id"] for d in ann.get("/api/account/sessions").json() if not d["current"]][0]
    db_jobs.clear()
    assert ann.delete(f"/api/account/sessions/{phone_id}").status_code == 204
    assert db_jobs.mine() == [read, write]
    code = ann.post("/api/account/claim", {"email": "x@example.com", "password": PASSWORD})
    assert code.json()["code"] == "already_claimed"
    stranger = new_reader()
    stranger.get("/healthz")
    db_jobs.clear()
    wrong = stranger.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": "A" * 26,
                                                   "new_password": PASSWORD})
    assert wrong.status_code == 401 and db_jobs.seen == [read]
    db_jobs.clear()
    assert ann.delete("/api/account", {"password": OTHER_PASSWORD}).status_code == 204
    assert db_jobs.mine() == [read, write]


def test_recovery_and_anonymous_sign_out_are_a_read_and_a_write(reader: Reader, new_reader, db_jobs) -> None:
    from app.domain import accounts

    read, write = ("read", accounts.__name__), ("write", accounts.__name__)
    code = reader.claim("ann@example.com")["recovery_code"]
    lost = new_reader()
    lost.get("/healthz")
    db_jobs.clear()
    done = lost.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": code,
                                              "new_password": OTHER_PASSWORD})
    assert done.status_code == 200 and db_jobs.seen == [read, write]
    anonymous = new_reader()
    anonymous.start()
    db_jobs.clear()
    assert anonymous.delete("/api/session").status_code == 204
    assert db_jobs.mine() == [read, write]
    laptop = new_reader()
    laptop.start()
    db_jobs.clear()
    assert laptop.login("ann@example.com", OTHER_PASSWORD).status_code == 200  # its empty workbook goes
    assert db_jobs.seen == [read, write]


def test_a_sign_in_that_merges_is_two_units_of_work_after_its_read(seeded: Path, new_reader, db_jobs) -> None:
    """The one request of more than two batches (docs/engines.md): the credentials' read,
    then the merge (a read and a write of its own, which removes the anonymous workbook),
    then the sign-in's write."""
    from app.domain import accounts
    from app.domain.portability import merge

    owner = new_reader()
    owner.start()
    owner.claim("ann@example.com")
    phone = new_reader()
    phone.start()
    assert phone.put("/api/exercises/1.1.1.v1/response", {"response": {"text": "on the phone"}}).status_code == 200
    db_jobs.clear()
    merged = phone.login("ann@example.com", merge_anonymous=True)
    assert merged.status_code == 200 and merged.json()["merge"]["counts"]["exercises"]["inserted"] == 1
    assert set(merged.json()) == {"user", "merge"} and merged.json()["merge"]["dry_run"] is False
    assert db_jobs.seen == [("read", accounts.__name__), ("read", merge.__name__), ("write", merge.__name__),
                            ("write", accounts.__name__)]


# --- two readers ---------------------------------------------------------------------------------


def test_two_readers_no_account_request_of_one_sees_or_changes_the_other(seeded: Path, new_reader,
                                                                          db_path: Path) -> None:
    ann, bob = new_reader(), new_reader()
    ann.start()
    bob.start()
    for who, text in ((ann, "ann's"), (bob, "bob's")):
        assert who.put("/api/exercises/1.1.1.v1/response", {"response": {"text": text}}).status_code == 200
    bob.claim("bob@example.com")
    bob_me = bob.get("/api/me").json()
    bob_devices = [d["id"] for d in bob.get("/api/account/sessions").json()]
    bob_auth = db_rows(db_path, "SELECT password_hash, wrapped_data_key FROM auth WHERE user_id = ?", (bob_me["id"],))

    def bob_untouched() -> None:
        assert bob.get("/api/me").json() == bob_me
        assert [d["id"] for d in bob.get("/api/account/sessions").json()] == bob_devices
        assert bob.get("/api/exercises/1.1.1.v1").json()["response"]["response"] == {"text": "bob's"}
        assert db_rows(db_path, "SELECT password_hash, wrapped_data_key FROM auth WHERE user_id = ?",
                       (bob_me["id"],)) == bob_auth

    code = ann.claim("ann@example.com")["recovery_code"]
    bob_untouched()
    assert ann.get("/api/me").json()["email"] == "ann@example.com"
    assert not set(bob_devices) & {d["id"] for d in ann.get("/api/account/sessions").json()}
    assert ann.delete(f"/api/account/sessions/{bob_devices[0]}").status_code == 404
    bob_untouched()
    assert ann.post("/api/account/password", {"current_password": PASSWORD, "new_password": OTHER_PASSWORD}).status_code == 204
    bob_untouched()
    other = new_reader()
    other.get("/healthz")
    assert other.post("/api/account/recover", {"email": "ann@example.com", "recovery_code": code,
                                               "new_password": PASSWORD}).status_code == 200
    bob_untouched()
    assert ann.get("/api/me").status_code == 401  # the recovery ended ann's sessions, and only hers
    assert ann.login("ann@example.com", PASSWORD).status_code == 200
    assert ann.delete("/api/session").status_code == 204
    assert ann.login("ann@example.com", PASSWORD).status_code == 200
    assert ann.login("bob@example.com", "ann guessing bob's password").status_code == 401
    bob_untouched()
    carol = new_reader()
    carol.start()
    assert carol.delete("/api/session").status_code == 204  # an anonymous workbook's sign-out deletes it
    bob_untouched()
    assert ann.delete("/api/account", {"password": PASSWORD}).status_code == 204
    bob_untouched()
    assert new_reader().login("bob@example.com").status_code == 200


# --- guards: a change between a flow's read and its write batch --------------------------------


def write_after(conn: sqlite3.Connection, work, interfere) -> Exception:
    """Run a work by hand as the d1 engine does (its reads, then its write batch) with
    `interfere(conn)` just before the write: what another process could do meanwhile. The
    write must be refused; the failure is thrown into the work, and what the work then raises
    (the reader's answer) comes back."""
    from app.db.connection import run_batch
    from app.db.engine import ConstraintFailed, GuardFailed, Write

    batch = next(work)
    while not isinstance(batch, Write):
        batch = work.send(run_batch(conn, batch.statements, False))
    interfere(conn)
    try:
        run_batch(conn, batch.statements, True)
    except (GuardFailed, ConstraintFailed) as failed:
        try:
            work.throw(failed)
        except Exception as answer:
            return answer
        raise AssertionError("the work went on after its write batch failed") from None
    raise AssertionError("the guard let a stale decision write")


@pytest.fixture
def keys_of(client):
    return client.app.state.server_keys


def principal_of(keys_of, reader: Reader):
    from app.domain.sessions import principal_of as opened

    return opened(keys_of, reader.session_cookie)


def credentials(db_path: Path, user_id: str) -> sqlite3.Row:
    return db_rows(db_path, "SELECT user_id, password_hash, wrapped_data_key, updated_at FROM auth WHERE user_id = ?",
                   (user_id,))[0]


def another_change(user_id: str):
    def interfere(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE auth SET password_hash = 'changed meanwhile', updated_at = '2099-01-01T00:00:00.000Z'"
                     " WHERE user_id = ?", (user_id,))

    return interfere


STAMP = "2026-03-08T07:30:00.000Z"


@pytest.mark.parametrize("meanwhile", ["claimed", "email_taken", "signed_out"])
def test_a_claim_is_refused_when_its_workbook_its_email_or_its_session_changed_meanwhile(
        reader: Reader, new_reader, keys_of, conn: sqlite3.Connection, db_path: Path, meanwhile: str) -> None:
    from app.domain import accounts

    principal = principal_of(keys_of, reader)
    other = new_reader()
    other.start()
    other_id = other.get("/api/me").json()["id"]
    interfere = {
        "claimed": lambda c: c.execute("UPDATE users SET is_anonymous = 0 WHERE id = ?", (principal.user_id,)),
        "email_taken": lambda c: c.execute("INSERT INTO emails (id, user_id, email, added_at) VALUES ('e', ?, ?, ?)",
                                           (other_id, "ann@example.com", STAMP)),
        "signed_out": lambda c: c.execute("DELETE FROM sessions WHERE id = ?", (principal.session_id,)),
    }[meanwhile]
    work = accounts.claim_write_work(principal, keys_of, "ann@example.com", "hash", "wrapped", "code", STAMP)
    answer = write_after(conn, work, interfere)
    assert answer.instance_code == {"claimed": "already_claimed", "email_taken": "email_taken",
                                    "signed_out": "invalid_session"}[meanwhile]
    assert db_rows(db_path, "SELECT count(*) FROM auth")[0][0] == 0
    assert db_rows(db_path, "SELECT count(*) FROM emails WHERE user_id = ?", (principal.user_id,))[0][0] == 0


@pytest.mark.parametrize("flow", ["password_change", "recovery"])
def test_new_credentials_are_written_only_over_the_ones_read(reader: Reader, keys_of, conn: sqlite3.Connection,
                                                             db_path: Path, flow: str) -> None:
    from app.domain import accounts, keys

    user_id = reader.claim("ann@example.com")["user"]["id"]
    principal = principal_of(keys_of, reader) if flow == "password_change" else None
    read = credentials(db_path, user_id)
    work = accounts.new_credentials_work(keys_of, user_id, keys.new_data_key(), read, "new hash", "new wrapped",
                                         STAMP, principal)
    answer = write_after(conn, work, another_change(user_id))
    assert answer.instance_code == "changed_concurrently"
    assert credentials(db_path, user_id)["password_hash"] == "changed meanwhile"  # the other change stands
    assert db_rows(db_path, "SELECT count(*) FROM sessions WHERE user_id = ?", (user_id,))[0][0] == 1


@pytest.mark.parametrize("rehash", [False, True])
def test_a_sign_in_is_refused_when_the_password_changed_after_it_was_checked(
        reader: Reader, keys_of, conn: sqlite3.Connection, db_path: Path, rehash: bool) -> None:
    from app.domain import accounts, keys

    user_id = reader.claim("ann@example.com")["user"]["id"]
    read = credentials(db_path, user_id)
    unlocked = accounts.Unlocked(user_id, keys.new_data_key(), read["password_hash"], read["updated_at"],
                                 ("rehashed", "rewrapped") if rehash else None)
    before, after, issued = accounts.sign_in_statements(keys_of, unlocked, None, None, True, STAMP)
    answer = write_after(conn, accounts.sign_in_write_work(before, after, issued), another_change(user_id))
    assert answer.instance_code == "changed_concurrently"
    assert db_rows(db_path, "SELECT count(*) FROM sessions WHERE id = ?", (issued.session_id,))[0][0] == 0


def test_an_empty_anonymous_workbook_is_not_discarded_once_it_holds_an_answer(
        seeded: Path, new_reader, keys_of, conn: sqlite3.Connection, db_path: Path) -> None:
    from app.domain import accounts, keys

    owner = new_reader()
    owner.start()
    user_id = owner.claim("ann@example.com")["user"]["id"]
    laptop = new_reader()
    anonymous = laptop.start()
    device = principal_of(keys_of, laptop)
    read = credentials(db_path, user_id)
    unlocked = accounts.Unlocked(user_id, keys.new_data_key(), read["password_hash"], read["updated_at"], None)
    before, after, issued = accounts.sign_in_statements(keys_of, unlocked, device.session_id, device, True, STAMP)

    def another_tab_answers(c: sqlite3.Connection) -> None:
        answer_directly(db_path, anonymous["id"])

    answer = write_after(conn, accounts.sign_in_write_work(before, after, issued), another_tab_answers)
    assert answer.instance_code == "anonymous_data_present"
    assert db_rows(db_path, "SELECT count(*) FROM exercise_responses WHERE user_id = ?", (anonymous["id"],))[0][0] == 1
    assert laptop.get("/api/me").json()["id"] == anonymous["id"]


@pytest.mark.parametrize("meanwhile", ["password_changed", "signed_out"])
def test_an_account_deletion_is_refused_when_its_password_or_session_changed_meanwhile(
        reader: Reader, keys_of, conn: sqlite3.Connection, db_path: Path, meanwhile: str) -> None:
    from app.domain import accounts

    user_id = reader.claim("ann@example.com")["user"]["id"]
    principal = principal_of(keys_of, reader)
    work = accounts.delete_account_work(principal, credentials(db_path, user_id))
    interfere = another_change(user_id) if meanwhile == "password_changed" else (
        lambda c: c.execute("DELETE FROM sessions WHERE id = ?", (principal.session_id,)))
    answer = write_after(conn, work, interfere)
    assert answer.instance_code == ("changed_concurrently" if meanwhile == "password_changed" else "invalid_session")
    assert db_rows(db_path, "SELECT count(*) FROM users WHERE id = ?", (user_id,))[0][0] == 1


# --- claims racing for one email, across processes ----------------------------------------------


def _claim_in_another_process(settings, claims: int, barrier, results) -> None:
    import asyncio

    from app.db.engines import open_engine
    from app.domain import accounts, keys, sessions
    from app.domain.errors import Conflict
    from app.domain.throttle import Throttle

    async def main() -> list[str]:
        db = await open_engine(settings)  # the sqlite file, or the D1 Worker
        server = sessions.ServerKeys.derive(b"s" * 32, argon2=keys.Argon2Params.FAST)
        throttle = Throttle(enabled=False)
        try:
            principals = [(await sessions.start_anonymous(db, server))[0] for _ in range(claims)]
            await asyncio.to_thread(barrier.wait)

            async def one(principal: sessions.Principal) -> str:
                try:
                    await accounts.claim(db, server, throttle, principal, client="x", email="race@example.com",
                                         password=PASSWORD)
                except Conflict as refused:
                    return refused.instance_code
                return "claimed"

            return list(await asyncio.gather(*(one(p) for p in principals)))
        finally:
            await db.close()

    results.put(asyncio.run(main()))


def test_thirty_two_claims_of_one_email_across_processes_make_exactly_one_account(db_path: Path, settings) -> None:
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    processes, each = 4, 8
    barrier, results = spawn.Barrier(processes), spawn.Queue()
    workers = [spawn.Process(target=_claim_in_another_process, args=(settings, each, barrier, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [code for _ in workers for code in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(outcomes) == ["claimed"] + ["email_taken"] * 31
    assert db_rows(db_path, "SELECT count(*) FROM emails")[0][0] == 1
    assert db_rows(db_path, "SELECT count(*) FROM auth")[0][0] == 1
    owner = db_rows(db_path, "SELECT id FROM users WHERE is_anonymous = 0")
    assert len(owner) == 1
    assert db_rows(db_path, "SELECT user_id FROM emails")[0][0] == owner[0][0]
    assert db_rows(db_path, "SELECT user_id FROM auth")[0][0] == owner[0][0]
