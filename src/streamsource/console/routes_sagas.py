"""Sagas: running, stuck, compensated...; each saga's step history; an admin's resume and
abort, carried out by the service that runs the saga (see :mod:`streamsource.sagas.admin`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from streamsource.console.app import console_of, principal_of, render
from streamsource.console.auth import require_admin
from streamsource.console.store_views import MASKED, pretty
from streamsource.sagas.admin import list_sagas, load_saga, request
from streamsource.sagas.core import SagaState

router = APIRouter()

Status = Literal["running", "compensating", "completed", "compensated", "stuck", "aborted"]
SagaId = Annotated[str, Query(min_length=1, max_length=200)]


@dataclass(frozen=True)
class SagaRow:
    saga_id: str
    name: str
    key: str
    status: str
    step: str | None
    reason: str | None
    updated_at: str | None


@dataclass(frozen=True)
class StepRecord:
    at: str
    event: str
    step: str | None
    detail: str


@dataclass(frozen=True)
class SagaDetail:
    saga: SagaRow
    data: dict[str, Any] | None
    """None when values are masked for the viewer."""
    history: list[StepRecord]

    @property
    def data_text(self) -> str:
        return MASKED if self.data is None else pretty(self.data)


@dataclass(frozen=True)
class Requested:
    saga_id: str
    op: str
    status: str
    """The saga's status now: the request is carried out by its service's engine."""


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def _row(state: SagaState) -> SagaRow:
    steps = [h.step for h in state.history if h.step is not None]
    return SagaRow(
        saga_id=state.saga_id,
        name=state.name,
        key=state.key,
        status=state.status,
        step=steps[-1] if steps else None,
        reason=state.reason,
        updated_at=_when(state.history[-1].at) if state.history else None,
    )


@router.get("/api/sagas", tags=["sagas"])
def api_sagas(
    request_: Request,
    status: Status | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SagaRow]:
    """Sagas, most recently changed first, of one status and/or name."""
    store = console_of(request_).store
    return [_row(s) for s in list_sagas(store, status=status, name=name or None, limit=limit)]


@router.get("/sagas", include_in_schema=False)
def sagas(
    request_: Request,
    status: Status | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    rows = api_sagas(request_, status, name)
    return render(request_, "sagas.html", sagas=rows, wanted=status or "", name=name or "")


@router.get("/api/saga", tags=["sagas"])
def api_saga(request_: Request, id: SagaId) -> SagaDetail:
    """One saga: its status, data and every decision of its history."""
    console = console_of(request_)
    state = load_saga(console.store, id)
    masked = console.masks(principal_of(request_))
    history = [StepRecord(_when(h.at), h.event, h.step, h.detail) for h in state.history]
    return SagaDetail(_row(state), None if masked else dict(state.data), history)


@router.get("/saga", include_in_schema=False)
def saga(request_: Request, id: SagaId, requested: str | None = None) -> HTMLResponse:
    return render(request_, "saga.html", detail=api_saga(request_, id), requested=requested)


@router.post("/api/saga/{op}", tags=["sagas"])
def api_request(
    request_: Request,
    op: Literal["resume", "abort"],
    id: SagaId,
    reason: Annotated[str, Query(max_length=1000)] = "aborted by an operator",
) -> Requested:
    """Ask the saga's service to resume a stuck saga or abort a running one (admin)."""
    principal = principal_of(request_)
    require_admin(principal)
    why = f"{reason} ({principal.name})" if op == "abort" else reason
    state = request(console_of(request_).store, id, op, why)
    return Requested(id, op, state.status)


@router.post("/saga/{op}", include_in_schema=False)
def request_page(request_: Request, op: Literal["resume", "abort"], id: SagaId) -> HTMLResponse:
    done = api_request(request_, op, id)
    message = f"{op} requested: the service running the saga carries it out"
    return saga(request_, done.saga_id, requested=message)
