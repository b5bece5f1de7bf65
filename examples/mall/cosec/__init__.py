"""The cosec service: the create-order saga (orchestration) on streamsource.sagas, with
compensations and step timeouts."""

from __future__ import annotations

from fastapi import APIRouter

from ..platform.service import Service, Wiring
from . import api, handlers
from .application import Sagas


class _Deadlines:
    """The engine's deadline thread, as the process starts and stops it."""

    def __init__(self, sagas: Sagas) -> None:
        self.sagas = sagas

    def start(self) -> object:
        return self.sagas.engine.__enter__()

    def stop(self) -> None:
        self.sagas.engine.__exit__(None, None, None)


def build(wiring: Wiring) -> APIRouter:
    sagas = Sagas(wiring.own, wiring.step_timeout)
    handlers.register(wiring.own.messages, sagas)
    wiring.background.append(_Deadlines(sagas))
    return api.router(sagas)


SERVICE = Service("cosec", (), build)
