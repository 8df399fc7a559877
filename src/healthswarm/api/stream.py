"""Live updates as server-sent events: the dashboard reloads what changed when the store's marker moves.

The marker is read from the store (not kept in memory), so changes made by other processes — an
ingest, `healthswarm demo`, another API worker — reach every open dashboard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from healthswarm.api.deps import engine_of, identify
from healthswarm.api.problems import Problem
from healthswarm.detect.service import change_marker

router = APIRouter(prefix="/api/v1")
POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 15.0


def _marker(request: Request) -> str:
    with engine_of(request).connect() as conn:
        return change_marker(conn)


async def _events(request: Request, poll: float) -> AsyncIterator[bytes]:
    marker = await run_in_threadpool(_marker, request)
    yield b"event: hello\ndata: " + orjson.dumps({"marker": marker}) + b"\n\n"
    quiet = 0.0
    while not await request.is_disconnected():
        await asyncio.sleep(poll)
        now = await run_in_threadpool(_marker, request)
        if now != marker:
            marker, quiet = now, 0.0
            yield b"event: change\ndata: " + orjson.dumps({"marker": marker}) + b"\n\n"
        else:
            quiet += poll
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"


@router.get("/stream", include_in_schema=False)
async def stream(request: Request) -> StreamingResponse:
    """`text/event-stream` of `hello` then `change` events; EventSource cannot send headers, so the
    token may come as `?access_token=`."""
    who = await run_in_threadpool(identify, request, True)
    if not who.may("read"):
        raise Problem(403, f"role {who.role!r} may not read here", title="Forbidden")
    poll = getattr(request.app.state, "stream_poll", POLL_SECONDS)
    return StreamingResponse(_events(request, poll), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
