"""Daily Dos endpoint (docs/daily-dos.md)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from app.db.engine import Engine
from app.domain import daily_dos
from app.domain.daily_dos import DailyDo
from app.domain.sessions import Principal
from app.http.contract import QUERY, READER, problems


class DailyDosController(Controller):
    path = "/"
    tags = ["daily dos"]

    @get("/daily-dos", summary="Resume card, then the reminders due today (tz: the reader's IANA time zone)",
         responses=problems(READER, QUERY, "invalid_time_zone"))
    async def daily_dos(self, db: NamedDependency[Engine], principal: NamedDependency[Principal],
                        tz: FromQuery[str | None] = None) -> list[DailyDo]:
        # The name is checked (length and known zones) by the domain, so an unknown one is a
        # 422 `invalid_time_zone` problem rather than a generic parameter error.
        return await daily_dos.daily_dos(db, principal, tz)


DAILY_DOS_CONTROLLERS = [DailyDosController]
