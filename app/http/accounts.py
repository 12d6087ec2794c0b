"""Session and account endpoints."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from app.db.engine import Engine
from app.domain import accounts, sessions
from app.domain.accounts import Claimed, Device, Me, Recovered, SignedIn
from app.domain.bodies import Password
from app.domain.sessions import COOKIE_NAME, Principal, ServerKeys
from app.domain.throttle import Throttle
from app.http.auth import cleared_session_cookie, client_address, with_session
from app.http.contract import BODY, CHANGE, READER, OptionalBody, problems
from app.http.request import HttpRequest, Strict

# Why a new password can be refused.
PASSWORDS = ("password_too_short", "password_too_long", "password_common", "password_guessable")

Email = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]


class ClaimIn(Strict):
    email: Email
    password: Password


class LoginIn(Strict):
    email: Email
    password: Password
    merge_anonymous: bool | None = None


class PasswordIn(Strict):
    current_password: Password
    new_password: Password


class RecoverIn(Strict):
    email: Email
    recovery_code: Annotated[str, msgspec.Meta(max_length=200)]
    new_password: Password


class DeleteIn(Strict):
    password: Password | None = None



class SessionController(Controller):
    path = "/"
    tags = ["session and account"]

    @post("/session", status_code=201, summary="Start (or resume) an anonymous workbook",
          responses={200: ResponseSpec(Me, description="The cookie's session is valid: that reader"),
                     **problems(CHANGE, "too_many_attempts")})
    async def start(self, request: HttpRequest, db: NamedDependency[Engine],
                    server_keys: NamedDependency[ServerKeys], throttle: NamedDependency[Throttle]) -> Response[Me]:
        """201 with a new anonymous user and session; 200 when the cookie is a valid session.
        A forged or unknown cookie is ignored (never adopted) and a new workbook starts."""
        opened = await accounts.open_workbook(
            db, server_keys, throttle, client=client_address(request),
            current=sessions.cookie_principal(server_keys, request.cookies.get(COOKIE_NAME)))
        if opened.cookie is None:
            return Response(opened.me, status_code=200)
        return with_session(opened.me, request, opened.cookie, 201)

    @get("/me", summary="Who am I", responses=problems(READER))
    async def who(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> Me:
        return await accounts.me(db, principal)

    @delete("/session", status_code=204, summary="Log out this device", responses=problems(READER, CHANGE))
    async def logout(self, request: HttpRequest, db: NamedDependency[Engine],
                     principal: NamedDependency[Principal]) -> Response[None]:
        """Ends this session. An anonymous workbook has no other key than this cookie, so
        logging out of one deletes it (the page warns first)."""
        await accounts.sign_out(db, principal)
        return Response(None, status_code=204, cookies=[cleared_session_cookie(request)])


class AccountController(Controller):
    path = "/"
    tags = ["session and account"]

    @post("/account/claim", status_code=200, summary="Save this workbook with email and password",
          responses=problems(READER, BODY, CHANGE, PASSWORDS, "already_claimed", "email_taken", "invalid_email",
                             "too_many_attempts", "unavailable"))
    async def claim(self, request: HttpRequest, data: JSONBody[ClaimIn],
                    db: NamedDependency[Engine], server_keys: NamedDependency[ServerKeys],
                    throttle: NamedDependency[Throttle], principal: NamedDependency[Principal]) -> Response[Claimed]:
        claimed = await accounts.claim(db, server_keys, throttle, principal, client=client_address(request),
                                       email=data.email, password=data.password)
        return with_session(claimed.body, request, claimed.cookie)

    @post("/auth/login", status_code=200, summary="Sign in on this device",
          responses=problems(BODY, CHANGE, "invalid_credentials", "anonymous_data_present", "too_many_attempts",
                             "unavailable"))
    async def login(self, request: HttpRequest, data: JSONBody[LoginIn],
                    db: NamedDependency[Engine], server_keys: NamedDependency[ServerKeys],
                    throttle: NamedDependency[Throttle]) -> Response[SignedIn]:
        """A device that holds an anonymous workbook with answers must say what happens to it:
        `merge_anonymous: true` merges it into the account, `false` discards it. Without a
        choice the answer is 409 `anonymous_data_present` and nothing changes."""
        signed_in = await accounts.sign_in(
            db, server_keys, throttle, client=client_address(request), email=data.email, password=data.password,
            device=sessions.cookie_principal(server_keys, request.cookies.get(COOKIE_NAME)),
            merge_anonymous=data.merge_anonymous,
        )
        return with_session(signed_in.body, request, signed_in.cookie)

    @post("/account/password", status_code=204, summary="Change the password",
          responses=problems(READER, BODY, CHANGE, PASSWORDS, "invalid_credentials", "not_claimed",
                             "too_many_attempts", "unavailable"))
    async def password(self, request: HttpRequest, data: JSONBody[PasswordIn],
                       db: NamedDependency[Engine], server_keys: NamedDependency[ServerKeys],
                       throttle: NamedDependency[Throttle], principal: NamedDependency[Principal]) -> Response[None]:
        issued = await accounts.change_password(
            db, server_keys, throttle, principal, client=client_address(request),
            current_password=data.current_password, new_password=data.new_password,
        )
        return with_session(None, request, issued, 204)

    @post("/account/recover", status_code=200, summary="Reset the password with the recovery code",
          responses=problems(BODY, CHANGE, PASSWORDS, "invalid_credentials", "too_many_attempts", "unavailable"))
    async def recover(self, request: HttpRequest, data: JSONBody[RecoverIn],
                      db: NamedDependency[Engine], server_keys: NamedDependency[ServerKeys],
                      throttle: NamedDependency[Throttle]) -> Response[Recovered]:
        recovered = await accounts.recover(
            db, server_keys, throttle, client=client_address(request), email=data.email,
            recovery_code=data.recovery_code, new_password=data.new_password,
        )
        return with_session(recovered.body, request, recovered.cookie)

    @get("/account/sessions", summary="This account's devices", responses=problems(READER))
    async def devices(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> list[Device]:
        return await accounts.list_sessions(db, principal)

    @delete("/account/sessions/{session_id:str}", status_code=204, summary="Sign a device out",
            responses=problems(READER, CHANGE, "not_found"))
    async def revoke(self, session_id: FromPath[str], db: NamedDependency[Engine],
                     principal: NamedDependency[Principal]) -> None:
        await accounts.revoke_session(db, principal, session_id)

    @delete("/account", status_code=204, summary="Delete the account and everything in it (a saved one needs its password)",
            operation_class=OptionalBody, responses=problems(READER, BODY, CHANGE, "invalid_credentials", "too_many_attempts", "unavailable"))
    async def delete_account(self, request: HttpRequest, db: NamedDependency[Engine],
                             server_keys: NamedDependency[ServerKeys], throttle: NamedDependency[Throttle],
                             principal: NamedDependency[Principal],
                             data: JSONBody[DeleteIn | None] = None) -> Response[None]:
        await accounts.delete_account(db, server_keys, throttle, principal, client=client_address(request),
                                      password=data.password if data is not None else None)
        return Response(None, status_code=204, cookies=[cleared_session_cookie(request)])
