"""REST API for custom actions: validate and store specs (errors carry line and column), switch
them on and off, start one from the inbox, and read runs step by step."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from frontdesk.adapters.db.models import Practice
from frontdesk.domain.times import now_utc
from frontdesk.services import actions
from frontdesk.services.apikeys import Caller
from frontdesk.services.chores import message_sender
from frontdesk.web.api.v1 import ERRORS, caller, runtime_of, writer

router = APIRouter(prefix="/api/v1/actions", tags=["actions"])


class SpecBody(BaseModel):
    yaml: str = Field(description="The action spec as YAML (docs/ACTIONS.md)", max_length=64_000)
    enabled: bool | None = Field(default=None, description="Switch it on or off as it is stored")


class StartBody(BaseModel):
    conversation_id: int | None = None
    patient_id: int | None = None
    appointment_id: int | None = None


def _practice(session: Session, who: Caller) -> Practice:
    practice = session.get(Practice, who.practice_id)
    assert practice is not None
    return practice


@router.post("/validate", responses=ERRORS, summary="Check a spec without storing it")
async def validate_spec(body: SpecBody, who: Annotated[Caller, Depends(caller)]) -> Any:
    spec = actions.validate(body.yaml)  # 422 with "line L, column C: path" locations
    return {"valid": True, "name": spec.name}


@router.put("", responses=ERRORS, summary="Store (or replace) a spec, checked first")
async def put_spec(
    body: SpecBody, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            record = actions.save(
                session, _practice(session, who), body.yaml, actor=who.actor, enabled=body.enabled
            )
            return actions.view(record)

    return await run_in_threadpool(run)


@router.get("", responses=ERRORS, summary="The practice's actions")
async def list_specs(request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return {"items": actions.list_actions(session, _practice(session, who))}

    return await run_in_threadpool(read)


@router.post("/{name}/enable", responses=ERRORS, summary="Switch an action on")
async def enable(name: str, request: Request, who: Annotated[Caller, Depends(writer)]) -> Any:
    return await _switch(request, who, name, True)


@router.post("/{name}/disable", responses=ERRORS, summary="Switch an action off")
async def disable(name: str, request: Request, who: Annotated[Caller, Depends(writer)]) -> Any:
    return await _switch(request, who, name, False)


async def _switch(request: Request, who: Caller, name: str, enabled: bool) -> dict[str, Any]:
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            record = actions.set_enabled(
                session, _practice(session, who), name, enabled, actor=who.actor
            )
            return actions.view(record)

    return await run_in_threadpool(run)


@router.post("/{name}/start", responses=ERRORS, summary="Start an action from the inbox")
async def start(
    name: str, body: StartBody, request: Request, who: Annotated[Caller, Depends(writer)]
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def run() -> dict[str, Any]:
        with runtime.transaction() as session:
            runner = actions.runner_for(runtime, now_utc())
            started = actions.start_manual(
                session,
                runner,
                _practice(session, who),
                name,
                conversation_id=body.conversation_id,
                patient_id=body.patient_id,
                appointment_id=body.appointment_id,
                actor=who.actor,
            )
            session.flush()
            ids = [m.id for m in runner.queued]
            run_id = started.id
        message_sender(runtime).send_now(ids)
        with runtime.transaction() as session:
            return actions.run_view(session, _practice(session, who), run_id)

    return await run_in_threadpool(run)


@router.get("/runs", responses=ERRORS, summary="Recent action runs")
async def list_runs(
    request: Request,
    who: Annotated[Caller, Depends(caller)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return {"items": actions.list_runs(session, _practice(session, who), limit)}

    return await run_in_threadpool(read)


@router.get("/runs/{run_id}", responses=ERRORS, summary="One run, step by step (redacted)")
async def get_run(run_id: int, request: Request, who: Annotated[Caller, Depends(caller)]) -> Any:
    runtime = runtime_of(request)

    def read() -> dict[str, Any]:
        with runtime.transaction() as session:
            return actions.run_view(session, _practice(session, who), run_id)

    return await run_in_threadpool(read)
