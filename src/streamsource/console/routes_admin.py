"""Projections and persistent subscriptions: pages, JSON twins, and the admin's actions
(rebuild, replay), each a POST that needs the admin role and the CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from streamsource.console import store_admin
from streamsource.console.app import console_of, principal_of, render
from streamsource.console.auth import require_admin
from streamsource.console.errors import Unavailable

router = APIRouter()

GroupName = Annotated[str, Query(min_length=1, max_length=200)]


def _projections(request: Request) -> store_admin.Projections:
    console = console_of(request)
    spec = console.config.projections
    if spec is None:
        raise Unavailable("no projections: start the console with --projections module:attr")
    panel = console.extensions.get("projections")
    if panel is None:
        panel = console.extensions["projections"] = store_admin.Projections(console.store, spec)
    assert isinstance(panel, store_admin.Projections)
    return panel


@router.get("/api/projections", tags=["projections"])
def api_projections(request: Request) -> list[store_admin.ProjectionRow]:
    """Each projection's generation, checkpoint, lag, last error and rebuild progress."""
    return _projections(request).rows()


@router.get("/projections", include_in_schema=False)
def projections(request: Request) -> HTMLResponse:
    if console_of(request).config.projections is None:
        return render(request, "projections.html", rows=None)
    rows = api_projections(request)
    running = any(r.rebuild is not None and not r.rebuild.finished for r in rows)
    return render(request, "projections.html", rows=rows, running=running)


@router.post("/api/projections/{name}/rebuild", tags=["projections"], status_code=202)
def api_rebuild(request: Request, name: str) -> store_admin.Rebuild:
    """Start rebuilding a projection (admin); follow it in ``GET /api/projections``."""
    require_admin(principal_of(request))
    return _projections(request).rebuild(name)


@router.post("/projections/{name}/rebuild", include_in_schema=False)
def rebuild(request: Request, name: str) -> HTMLResponse:
    api_rebuild(request, name)
    return projections(request)


# -- persistent subscriptions -------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    group: str
    replayed: int


@router.get("/api/subscriptions", tags=["subscriptions"])
def api_subscriptions(request: Request) -> list[store_admin.GroupRow]:
    """Persistent subscription groups: category, checkpoint, in flight, parked."""
    return store_admin.groups(console_of(request).store)


@router.get("/subscriptions", include_in_schema=False)
def subscriptions(request: Request) -> HTMLResponse:
    return render(request, "subscriptions.html", groups=api_subscriptions(request))


@router.get("/api/subscription", tags=["subscriptions"])
def api_subscription(request: Request, group: GroupName) -> store_admin.GroupDetail:
    """One group: its in-flight messages (attempts, consumer, last error) and the newest
    parked messages with the error that parked them."""
    console = console_of(request)
    mask = console.masks(principal_of(request))
    return store_admin.group_detail(console.store, group, mask=mask)


@router.get("/subscription", include_in_schema=False)
def subscription(request: Request, group: GroupName, replayed: int | None = None) -> HTMLResponse:
    detail = api_subscription(request, group)
    return render(request, "subscription.html", detail=detail, replayed=replayed)


@router.post("/api/subscription/replay", tags=["subscriptions"])
def api_replay(request: Request, group: GroupName) -> Replayed:
    """Send the group's parked messages (not replayed yet) through it again (admin)."""
    require_admin(principal_of(request))
    return Replayed(group, store_admin.replay_parked(console_of(request).store, group))


@router.post("/subscription/replay", include_in_schema=False)
def replay(request: Request, group: GroupName) -> HTMLResponse:
    done = api_replay(request, group)
    return subscription(request, group, replayed=done.replayed)
