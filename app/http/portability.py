"""Export and import (API.md "Portability")."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from app.db.connection import Database
from app.domain import accounts, portability
from app.domain.errors import Unauthorized
from app.domain.sessions import Principal, ServerKeys
from app.domain.throttle import Throttle
from app.http.auth import client_address
from app.timeutil import now_iso

Password = Annotated[str, msgspec.Meta(max_length=1024)]


class ExportIn(msgspec.Struct, forbid_unknown_fields=True):
    password: Password | None = None


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    document: Any
    password: Password | None = None


class PortabilityController(Controller):
    path = "/api"
    tags = ["portability"]

    @post("/export", status_code=200, summary="Download everything that is mine (spec §9, format 1.1)")
    async def export(self, request: Request[Any, Any, Any], db: NamedDependency[Database],
                     server_keys: NamedDependency[ServerKeys], throttle: NamedDependency[Throttle],
                     principal: NamedDependency[Principal]) -> Response[bytes]:
        """A claimed account gives its password: it protects the file's copy of the data key."""
        raw = await request.body()
        data = msgspec.json.decode(raw, type=ExportIn) if raw.strip() else ExportIn()
        if not principal.is_anonymous:
            throttle.hit("export", client_address(request))
            if not data.password:
                raise Unauthorized("Give your password to export an encrypted copy.", code="invalid_credentials")
            await accounts.confirm_password(db, server_keys, principal, data.password)
        document = await portability.export(db, principal.user_id, principal.dek,
                                            encrypted=not principal.is_anonymous, password=data.password)
        name = f"dreamtree-export-{now_iso()[:10]}.json"
        return Response(msgspec.json.encode(document), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @post("/import", status_code=200, summary="Merge an export into my workbook")
    async def import_(self, request: Request[Any, Any, Any], data: JSONBody[ImportIn], db: NamedDependency[Database],
                      throttle: NamedDependency[Throttle], principal: NamedDependency[Principal],
                      dry_run: FromQuery[bool] = False) -> dict[str, Any]:
        throttle.hit("import", client_address(request))
        report = await portability.import_document(db, principal.user_id, principal.dek, data.document,
                                                   password=data.password, dry_run=dry_run)
        return report.as_dict()


PORTABILITY_CONTROLLERS = [PortabilityController]
