"""Session and account endpoints (API.md "Session and account")."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.config import Settings
from app.db.connection import Database
from app.domain import accounts, sessions
from app.domain.errors import Conflict
from app.domain.sessions import Principal, ServerKeys
from app.domain.throttle import Throttle
from app.http.auth import cleared_session_cookie, client_address, optional_principal, with_session

Email = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


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


def settings_of(state: State) -> Settings:
    return state.settings


class SessionController(Controller):
    path = "/api"
    tags = ["session and account"]

    @post("/session", status_code=201, summary="Start (or resume) an anonymous workbook")
    async def start(self, request: Request[Any, Any, Any], state: State, db: NamedDependency[Database],
                    server_keys: NamedDependency[ServerKeys], throttle: NamedDependency[Throttle]) -> Response[Any]:
        """201 with a new anonymous user and session; 200 when the cookie is a valid session.
        A forged or unknown cookie is ignored (never adopted) and a new workbook starts."""
        current = await optional_principal(request, state)
        if current is not None:
            return Response(await accounts.me(db, current), status_code=200)
        throttle.hit("session_start", client_address(request))
        principal, issued = await sessions.start_anonymous(db, server_keys)
        return with_session(await accounts.me(db, principal), settings_of(state), issued, 201)

    @get("/me", summary="Who am I")
    async def who(self, db: NamedDependency[Database], principal: NamedDependency[Principal]) -> accounts.Me:
        return await accounts.me(db, principal)

    @delete("/session", status_code=204, summary="Log out this device")
    async def logout(self, state: State, db: NamedDependency[Database], principal: NamedDependency[Principal]) -> Response[None]:
        """Ends this session. An anonymous workbook has no other key than this cookie, so
        logging out of one deletes it (the page warns first)."""
        if principal.is_anonymous:
            await db.write(lambda c: accounts.delete_user_rows(c, principal.user_id))
        else:
            await sessions.end_session(db, principal)
        return Response(None, status_code=204, cookies=[cleared_session_cookie(settings_of(state))])


class AccountController(Controller):
    path = "/api"
    tags = ["session and account"]

    @post("/account/claim", status_code=200, summary="Save this workbook with email and password")
    async def claim(self, request: Request[Any, Any, Any], state: State, data: JSONBody[ClaimIn],
                    db: NamedDependency[Database], server_keys: NamedDependency[ServerKeys],
                    throttle: NamedDependency[Throttle], principal: NamedDependency[Principal]) -> Response[Any]:
        throttle.hit("claim", client_address(request))
        claimed = await accounts.claim(db, server_keys, principal, email=data.email, password=data.password)
        return with_session({"user": claimed.me, "recovery_code": claimed.recovery_code}, settings_of(state), claimed.cookie)

    @post("/auth/login", status_code=200, summary="Sign in on this device")
    async def login(self, request: Request[Any, Any, Any], state: State, data: JSONBody[LoginIn],
                    db: NamedDependency[Database], server_keys: NamedDependency[ServerKeys],
                    throttle: NamedDependency[Throttle]) -> Response[Any]:
        """A device that holds an anonymous workbook with answers must say what happens to it:
        `merge_anonymous: true` merges it into the account, `false` discards it. Without a
        choice the answer is 409 `anonymous_data_present` and nothing changes."""
        throttle.hit("login", client_address(request))
        current = await optional_principal(request, state)
        has_answers = await accounts.anonymous_has_answers(db, current)
        if has_answers and data.merge_anonymous is None:
            raise Conflict(
                "This device holds an unsaved workbook with answers. Sign in again with merge_anonymous "
                "true to bring them into your account, or false to discard them.",
                code="anonymous_data_present",
            )
        signed_in = await accounts.sign_in(
            db, server_keys, throttle, client=client_address(request), email=data.email, password=data.password, current=current,
            merge_anonymous=bool(has_answers and data.merge_anonymous),
        )
        body: dict[str, Any] = {"user": signed_in.me}
        if signed_in.merge is not None:
            body["merge"] = signed_in.merge
        return with_session(body, settings_of(state), signed_in.cookie)

    @post("/account/password", status_code=204, summary="Change the password")
    async def password(self, request: Request[Any, Any, Any], state: State, data: JSONBody[PasswordIn],
                       db: NamedDependency[Database], server_keys: NamedDependency[ServerKeys],
                       throttle: NamedDependency[Throttle], principal: NamedDependency[Principal]) -> Response[None]:
        throttle.hit("password", client_address(request))
        issued = await accounts.change_password(
            db, server_keys, principal, current_password=data.current_password, new_password=data.new_password
        )
        return with_session(None, settings_of(state), issued, 204)

    @post("/account/recover", status_code=200, summary="Reset the password with the recovery code")
    async def recover(self, request: Request[Any, Any, Any], state: State, data: JSONBody[RecoverIn],
                      db: NamedDependency[Database], server_keys: NamedDependency[ServerKeys],
                      throttle: NamedDependency[Throttle]) -> Response[Any]:
        recovered = await accounts.recover(
            db, server_keys, throttle, client=client_address(request), email=data.email, recovery_code=data.recovery_code,
            new_password=data.new_password,
        )
        return with_session({"user": recovered.me, "recovery_code": recovered.recovery_code},
                            settings_of(state), recovered.cookie)

    @get("/account/sessions", summary="This account's devices")
    async def devices(self, db: NamedDependency[Database], principal: NamedDependency[Principal]) -> list[dict[str, Any]]:
        return await accounts.list_sessions(db, principal)

    @delete("/account/sessions/{session_id:str}", status_code=204, summary="Sign a device out")
    async def revoke(self, session_id: FromPath[str], db: NamedDependency[Database],
                     principal: NamedDependency[Principal]) -> None:
        await accounts.revoke_session(db, principal, session_id)

    @delete("/account", status_code=204, summary="Delete the account and everything in it")
    async def delete_account(self, request: Request[Any, Any, Any], state: State, db: NamedDependency[Database],
                             server_keys: NamedDependency[ServerKeys], throttle: NamedDependency[Throttle],
                             principal: NamedDependency[Principal]) -> Response[None]:
        throttle.hit("delete", client_address(request))
        raw = await request.body()
        body = msgspec.json.decode(raw, type=DeleteIn) if raw.strip() else DeleteIn()
        await accounts.delete_account(db, server_keys, principal, password=body.password)
        return Response(None, status_code=204, cookies=[cleared_session_cookie(settings_of(state))])
