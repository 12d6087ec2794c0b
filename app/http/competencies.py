"""Competency self-assessment endpoints.

Only `/api/competencies/scores` and `/api/competencies/summary` live here; the reference list
`GET /api/competencies` belongs to app/http/reference.py.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from app.db.engine import Engine
from app.domain import competencies
from app.domain.competencies import CompetencyScore, CompetencySummary
from app.domain.sessions import Principal
from app.http.contract import BODY, CHANGE, READER, problems
from app.http.request import Strict


class ScoreIn(Strict):
    competency_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    score: Annotated[int, msgspec.Meta(ge=competencies.MIN_SCORE, le=competencies.MAX_SCORE)]


class ScoresIn(Strict):
    scores: Annotated[list[ScoreIn], msgspec.Meta(max_length=competencies.MAX_SCORES_PER_REQUEST)]


class CompetencyScoresController(Controller):
    path = "/competencies"
    tags = ["competencies"]

    @get("/scores", summary="The reader's self-assessed competency scores", responses=problems(READER))
    async def scores(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> list[CompetencyScore]:
        return await competencies.scores(db, principal)

    @put("/scores", summary="Save scores (1–5); returns all the reader's scores",
         responses=problems(READER, BODY, CHANGE, "unknown_competency", "duplicate_competency"))
    async def save(self, data: JSONBody[ScoresIn], db: NamedDependency[Engine],
                   principal: NamedDependency[Principal]) -> list[CompetencyScore]:
        return await competencies.save_scores(db, principal, [(s.competency_id, s.score) for s in data.scores])

    @get("/summary", summary="Averages, strengths, improvements, and whether re-assessment is due",
         responses=problems(READER))
    async def summary(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> CompetencySummary:
        return await competencies.summary(db, principal)


COMPETENCY_CONTROLLERS = [CompetencyScoresController]
