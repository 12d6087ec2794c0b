"""Export and import (docs/portability.md)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import Body, FromQuery, HeaderParameter, QueryParameter

from app.db.engine import Engine
from app.domain import portability
from app.domain.bodies import MAX_PASSWORD, Password
from app.domain.json_limits import FreeJSON
from app.domain.portability import ExportDoc, ImportReport
from app.domain.sessions import Principal, ServerKeys
from app.domain.throttle import Throttle
from app.http.auth import client_address
from app.http.contract import BODY, CHANGE, READER, OptionalBody, problems
from app.http.request import HttpRequest, Strict


class ExportIn(Strict):
    """A saved account re-enters its password: it protects the encrypted file's key copy, and
    it is asked before a readable copy too."""

    password: Password | None = None


IMPORT_BODY: dict[str, object] = {
    "oneOf": [
        {"$ref": "#/components/schemas/ExportDoc"},
        {"type": "object", "title": "ImportWrapper", "required": ["document"], "additionalProperties": False,
         "properties": {"document": {"$ref": "#/components/schemas/ExportDoc"},
                        "password": {"type": ["string", "null"], "maxLength": MAX_PASSWORD}}},
    ],
}


class PortabilityController(Controller):
    path = "/"
    tags = ["portability"]

    @post("/export", status_code=200, summary="Download everything that is mine (spec §9, format 1.1)",
          operation_class=OptionalBody,
          responses=problems(READER, BODY, CHANGE, "password_required", "invalid_credentials", "too_many_attempts",
                             "unavailable"))
    async def export(
        self, request: HttpRequest, db: NamedDependency[Engine], server_keys: NamedDependency[ServerKeys],
        throttle: NamedDependency[Throttle], principal: NamedDependency[Principal],
        data: Annotated[ExportIn | None, Body(description="a saved account's password")] = None,
        readable: Annotated[bool, QueryParameter(description="a readable (unencrypted) copy")] = False,
    ) -> Response[ExportDoc]:
        """The encrypted file (a saved account's default) or, with `readable=true`, a copy in
        clear, marked `"encrypted": false` and named `…-unencrypted.json`; an anonymous
        workbook's export is always readable. Body: `{"password": "..."}` for a saved account."""
        password = data.password if data is not None else None
        if password:
            throttle.hit("export", client_address(request))
        exported = await portability.export(db, server_keys, principal, password=password, readable=readable)
        return Response(exported.document, media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{exported.filename}"'})

    @post("/import", status_code=200, summary="Merge an export into my workbook",
          responses=problems(READER, BODY, CHANGE, "import_invalid", "import_too_large", "import_kdf_unsupported",
                             "invalid_credentials", "response_too_large", "import_over_limit",
                             "too_many_attempts", "unavailable"))
    async def import_(
        self, request: HttpRequest,
        # Decoded by the domain (it names what is wrong in a file and keeps what the original
        # app wrote); the document describes the two forms it takes.
        data: Annotated[FreeJSON, Body(description="The file that export downloads, as it is (its password in "
                                              "X-Export-Password), or the older wrapper {document, password}",
                                  schema_extra=IMPORT_BODY)],
        db: NamedDependency[Engine], throttle: NamedDependency[Throttle], principal: NamedDependency[Principal],
        password: Annotated[Password | None, HeaderParameter(name="X-Export-Password")] = None,
        dry_run: FromQuery[bool] = False,
    ) -> ImportReport:
        throttle.hit("import", client_address(request))
        return await portability.import_upload(db, principal, data, header_password=password, dry_run=dry_run)


PORTABILITY_CONTROLLERS = [PortabilityController]
