"""/tags: HTTP only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from pagely.catalog.tags import service
from pagely.catalog.tags.schemas import TagOut
from pagely.core.http import revalidated_response
from pagely.core.resources import ResourcesDep
from pagely.identity.dependencies import OPTIONAL_BEARER, OptionalReader

router = APIRouter(tags=["books"])


@router.get(
    "/tags",
    operation_id="tags_list",
    openapi_extra=OPTIONAL_BEARER,
    summary="Tags with book counts",
    description="Most used first.",
    response_model=list[TagOut],
)
async def list_tags(
    request: Request,
    resources: ResourcesDep,
    _reader: OptionalReader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    tags = await service.list_tags(resources.engine, resources.cache, limit)
    return revalidated_response(tags, request.headers.get("if-none-match"))
