"""Settings, reference data and skills (docs/skills.md for the skills).

The reference lists (personality types, competencies, references) ask for no `principal`,
so the /api router's session dependency is never resolved for them: they answer without a
session (the credits page is public). Settings and skills are the reader's own and do.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from app.db.engine import Engine
from app.domain import reference, settings, skills
from app.domain.reference import Competency, PersonalityType, Reference
from app.domain.sessions import Principal
from app.domain.settings import ReaderSettings
from app.domain.skills import Skill
from app.http.contract import BODY, CHANGE, QUERY, READER, problems
from app.http.request import Strict


class SettingsPatch(Strict):
    """Only the fields given change; `personality_type: null` clears it."""

    background_color: settings.BackgroundColor | UnsetType = UNSET
    text_color: settings.TextColor | UnsetType = UNSET
    font: settings.Font | UnsetType = UNSET
    personality_type: Annotated[str, msgspec.Meta(max_length=64)] | None | UnsetType = UNSET


class SkillIn(Strict):
    # Bounded loosely here; the domain applies the real rule (1–80 characters once trimmed).
    name: Annotated[str, msgspec.Meta(max_length=1000)]
    category: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class SettingsController(Controller):
    path = "/settings"
    tags = ["settings and reference data"]

    @get("/", summary="The reader's settings", responses=problems(READER))
    async def read(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> ReaderSettings:
        return await settings.read_settings(db, principal)

    @patch("/", summary="Change some settings; the full settings come back",
           responses=problems(READER, BODY, CHANGE, "unknown_personality_type"))
    async def change(self, data: JSONBody[SettingsPatch], db: NamedDependency[Engine],
                     principal: NamedDependency[Principal]) -> ReaderSettings:
        changes = {name: getattr(data, name) for name in settings.FIELDS if getattr(data, name) is not UNSET}
        return await settings.change_settings(db, principal, changes)


class ReferenceController(Controller):
    path = "/"
    tags = ["settings and reference data"]

    @get("/personality-types", summary="The 16 personality types, by code (no session needed)", responses=problems())
    async def personality_types(self, db: NamedDependency[Engine]) -> list[PersonalityType]:
        return await reference.personality_types(db)

    @get("/competencies", summary="Competencies with their levels, by category and order (no session needed)",
         responses=problems())
    async def competencies(self, db: NamedDependency[Engine]) -> list[Competency]:
        return await reference.competencies(db)

    @get("/references", summary="The credits, by author surname, with where each is used (no session needed)",
         responses=problems())
    async def references(self, db: NamedDependency[Engine]) -> list[Reference]:
        return await reference.references(db)


class SkillsController(Controller):
    path = "/skills"
    tags = ["skills"]

    @get("/", summary="Skills I may tag whose name contains q (master list, shared and my own)",
         responses=problems(READER, QUERY, "query_too_long", "unknown_skill_category"))
    async def search(self, db: NamedDependency[Engine], principal: NamedDependency[Principal],
                     q: FromQuery[str | None] = None, category: FromQuery[str | None] = None) -> list[Skill]:
        return await skills.search(db, principal, q, category)

    @post("/", summary="Add a custom skill (201), or get the existing one of that name (200)",
          responses={200: ResponseSpec(Skill, description="A skill of that name already exists: that one"),
                     **problems(READER, BODY, CHANGE, "invalid_skill_name", "unknown_skill_category",
                                "too_many_custom_skills")})
    async def add(self, data: JSONBody[SkillIn], db: NamedDependency[Engine],
                  principal: NamedDependency[Principal]) -> Response[Skill]:
        added = await skills.add_custom(db, principal, data.name, data.category)
        return Response(added.skill, status_code=201 if added.created else 200)


REFERENCE_CONTROLLERS = [SettingsController, ReferenceController, SkillsController]
