"""Does Argon2 stall other requests? p99 of a cheap endpoint, alone and while sign-ins run.

Starts the real server (production Argon2id: m=64 MiB, t=3, p=4), claims one account, then
measures GET /healthz with wrk (16 connections) twice in the same run: once idle, once while
four client threads sign in back to back. Argon2 runs in worker threads (at most two at a
time), so the event loop keeps answering; the ratio of the two p99s is the number to watch.

    .venv/bin/python bench/login_p99.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import server, wrk

PORT = 8431
PASSWORD = "river lantern pocket moss"


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def post(client: urllib.request.OpenerDirector, path: str, body: object, csrf: str | None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", **({"x-csrftoken": csrf} if csrf else {})})
    try:
        with client.open(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def csrf_of(client: urllib.request.OpenerDirector) -> str:
    client.open(f"http://127.0.0.1:{PORT}/healthz").read()
    jar = next(h for h in client.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
    return next(c.value for c in jar if c.name == "csrftoken")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dreamtree-login-bench-"))
    try:
        with server(work / "bench.db", PORT, "--no-rate-limits"):
            owner = opener()
            csrf = csrf_of(owner)
            assert post(owner, "/api/session", {}, csrf) == 201
            assert post(owner, "/api/account/claim", {"email": "bench@example.com", "password": PASSWORD}, csrf) == 200
            idle = wrk(f"http://127.0.0.1:{PORT}/healthz", seconds=args.seconds, connections=16)
            stop = threading.Event()
            logins: list[float] = []

            def sign_in_loop() -> None:
                client = opener()
                token = csrf_of(client)
                while not stop.is_set():
                    started = time.perf_counter()
                    status = post(client, "/api/auth/login", {"email": "bench@example.com", "password": PASSWORD}, token)
                    if status == 200:
                        logins.append(time.perf_counter() - started)

            threads = [threading.Thread(target=sign_in_loop) for _ in range(4)]
            for t in threads:
                t.start()
            busy = wrk(f"http://127.0.0.1:{PORT}/healthz", seconds=args.seconds, connections=16)
            stop.set()
            for t in threads:
                t.join()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logins.sort()
    print(f"{'GET /healthz':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in (("idle", idle), ("during 4 sign-in loops", busy)):
        print(f"{name:<28} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors'] + r['socket_errors']:>7.0f}")
    print(f"p99 ratio busy/idle: {busy['p99'] / idle['p99']:.2f}x; sign-ins completed: {len(logins)}, "
          f"median {1000 * logins[len(logins) // 2]:.0f} ms each" if logins else "no sign-ins completed")


if __name__ == "__main__":
    main()
