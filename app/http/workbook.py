"""Workbook endpoints."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.db.engine import Engine
from app.domain import workbook
from app.domain.json_limits import FreeJSON
from app.domain.sessions import Principal
from app.domain.workbook import AnswerSaved, CompletedModule, Exercise, Outline, WorkbookComplete
from app.http.auth import SESSION_FIRST, reader_of
from app.http.contract import BODY, CHANGE, READER, problems
from app.http.request import HttpRequest, Strict


class AnswerIn(Strict):
    response: FreeJSON
    skills: Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)] | None = None


class WorkbookController(Controller):
    path = "/"
    tags = ["workbook"]

    @get("/workbook", summary="Outline with per-exercise status and progress", responses=problems(READER))
    async def outline(self, request: HttpRequest) -> Outline:
        return await workbook.outline(*reader_of(request))

    @get("/workbook/next", summary="The next exercise in full, or {complete: true}", responses=problems(READER))
    async def next(self, request: HttpRequest) -> Exercise | WorkbookComplete:
        return await workbook.next_exercise(*reader_of(request))

    @get("/exercises/{full_exercise_id:str}", summary="One exercise in full (403 exercise_locked when locked)",
         responses=problems(READER, "exercise_locked", "not_found"))
    async def exercise(self, full_exercise_id: FromPath[str], db: NamedDependency[Engine],
                       principal: NamedDependency[Principal]) -> Exercise:
        return await workbook.exercise(db, principal, full_exercise_id)

    @put("/exercises/{full_exercise_id:str}/response", summary="Save or edit the answer",
         responses=problems(READER, BODY, CHANGE, "exercise_locked", "not_found", "empty_answer", "response_too_large",
                            "unknown_skill"), exception_handlers=SESSION_FIRST)
    async def answer(self, full_exercise_id: FromPath[str], data: JSONBody[AnswerIn], request: HttpRequest) -> AnswerSaved:
        return await workbook.answer(*reader_of(request), full_exercise_id, data.response, data.skills)

    @get("/modules", summary="The reader's completed modules", responses=problems(READER))
    async def modules(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> list[CompletedModule]:
        return await workbook.user_modules(db, principal)


WORKBOOK_CONTROLLERS = [WorkbookController]
