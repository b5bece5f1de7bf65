"""Projections: read models written in the same transaction as their checkpoint."""

from streamsource.eventstore.projections.projection import (
    Projection,
    ProjectionContext,
    ProjectionFailed,
)
from streamsource.eventstore.projections.runner import (
    ProjectionRunner,
    ProjectionStatus,
    RebuildProgress,
)

__all__ = [
    "Projection",
    "ProjectionContext",
    "ProjectionFailed",
    "ProjectionRunner",
    "ProjectionStatus",
    "RebuildProgress",
]
