"""Daily Dos endpoint (docs/daily-dos.md)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromQuery

from app.domain import daily_dos
from app.domain.daily_dos import DailyDo
from app.http.auth import reader_of
from app.http.contract import QUERY, READER, problems
from app.http.request import HttpRequest


class DailyDosController(Controller):
    path = "/"
    tags = ["daily dos"]

    @get("/daily-dos", summary="Resume card, then the reminders due today (tz: the reader's IANA time zone)",
         responses=problems(READER, QUERY, "invalid_time_zone"))
    async def daily_dos(self, request: HttpRequest, tz: FromQuery[str | None] = None) -> list[DailyDo]:
        # The name is checked (length and known zones) by the domain, so an unknown one is a
        # 422 `invalid_time_zone` problem rather than a generic parameter error.
        return await daily_dos.daily_dos(*reader_of(request), tz)


DAILY_DOS_CONTROLLERS = [DailyDosController]
