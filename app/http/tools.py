"""Tools endpoints (docs/tools.md). Content arrives as any JSON; its shape is the domain's
business (app/domain/tool_shapes.py), so the error names the tool and the field."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from app.db.engine import Engine
from app.domain import tools
from app.domain.json_limits import FreeJSON
from app.domain.sessions import Principal
from app.domain.tools import ToolInfo, ToolInstance
from app.http.auth import SESSION_FIRST, reader_of
from app.http.contract import BODY, CHANGE, READER, problems
from app.http.request import HttpRequest, Strict

# What a tool entry's content can be refused for (its shape, its size, its tags).
CONTENT = ("invalid_tool_content", "tool_content_too_large", "unknown_skill")

SkillIds = Annotated[list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)]


class NewToolInstance(Strict):
    content: FreeJSON
    origin: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = tools.STANDALONE
    skills: SkillIds | None = None


class ToolInstanceEdit(Strict):
    content: FreeJSON
    skills: SkillIds | None = None


class ToolController(Controller):
    path = "/"
    tags = ["tools"]

    @get("/tools", summary="The tools, with this reader's unlocks, counts and each content's JSON Schema",
         responses=problems(READER))
    async def catalogue(self, db: NamedDependency[Engine], principal: NamedDependency[Principal]) -> list[ToolInfo]:
        return await tools.list_tools(db, principal)

    @get("/tools/{tool_type:str}/instances", summary="The reader's entries of one tool, newest first",
         responses=problems(READER, "tool_not_found"))
    async def instances(self, tool_type: FromPath[str], db: NamedDependency[Engine],
                        principal: NamedDependency[Principal]) -> list[ToolInstance]:
        return await tools.list_instances(db, principal, tool_type)

    @post("/tools/{tool_type:str}/instances", status_code=201,
          summary="Create an entry (403 tool_locked until unlocked; 404 unknown tool)",
          responses=problems(READER, BODY, CHANGE, CONTENT, "tool_locked", "tool_not_found", "tool_instance_limit",
                             "invalid_origin"), exception_handlers=SESSION_FIRST)
    async def create(self, tool_type: FromPath[str], data: JSONBody[NewToolInstance], request: HttpRequest) -> ToolInstance:
        return await tools.create_instance(*reader_of(request), tool_type, data.content, data.origin, data.skills)

    @get("/tool-instances/{instance_id:str}", summary="One entry", responses=problems(READER, "tool_instance_not_found"))
    async def read(self, instance_id: FromPath[str], db: NamedDependency[Engine],
                   principal: NamedDependency[Principal]) -> ToolInstance:
        return await tools.read_instance(db, principal, instance_id)

    @put("/tool-instances/{instance_id:str}", summary="Edit an entry's content (and skills, when given)",
         responses=problems(READER, BODY, CHANGE, CONTENT, "tool_instance_not_found"))
    async def edit(self, instance_id: FromPath[str], data: JSONBody[ToolInstanceEdit], db: NamedDependency[Engine],
                   principal: NamedDependency[Principal]) -> ToolInstance:
        return await tools.edit_instance(db, principal, instance_id, data.content, data.skills)

    @delete("/tool-instances/{instance_id:str}", status_code=204, summary="Delete an entry and its skill tags",
            responses=problems(READER, CHANGE, "tool_instance_not_found"))
    async def remove(self, instance_id: FromPath[str], db: NamedDependency[Engine],
                     principal: NamedDependency[Principal]) -> None:
        await tools.delete_instance(db, principal, instance_id)


TOOL_CONTROLLERS = [ToolController]
