"""The asyncio inbox in the store's own database, on SQLite and PostgreSQL: claims, the
handler's rows and appended events commit together, or nothing does."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from streamsource.eventstore.codec import encode_events


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("pg_url"))


def recorded(n: int) -> ss.RecordedEvent:
    from datetime import UTC, datetime

    return ss.RecordedEvent(
        id=uuid.UUID(int=n + 1),
        stream=f"account-{n}",
        version=0,
        position=n + 1,
        type="Deposited",
        data={"amount": n},
        metadata={},
        recorded_at=datetime.now(UTC),
    )


async def test_claims_rows_and_appends_commit_together_or_not_at_all(store_url: str) -> None:
    # the handler's rows, its appends and the inbox's record of the ids: all or nothing
    store = await ss.open_async_store(store_url)
    try:
        inbox = ss.AsyncStoreInbox(store)
        batch = [recorded(0), recorded(1), recorded(0)]  # an id twice in one batch counts once
        seen = ss.NewEvent("Seen", {})
        async with inbox.transaction() as tx:
            # on PostgreSQL a transaction appends before its other writes
            await tx.append("audit-1", encode_events("audit-1", [seen]), ss.ANY)
            await tx.execute("CREATE TABLE seen (stream TEXT)")
            new = await inbox.claim(tx, "c", batch)
            assert [e.id for e in new] == [batch[0].id, batch[1].id]
            for event in new:
                mark = tx.dialect.placeholder
                await tx.execute(f"INSERT INTO seen VALUES ({mark})", (event.stream,))

        with pytest.raises(RuntimeError):
            async with inbox.transaction() as tx:
                other = ss.NewEvent("Seen", {})
                await tx.append("audit-1", encode_events("audit-1", [other]), ss.ANY)
                again = await inbox.claim(tx, "c", [recorded(1), recorded(2)])
                assert [e.id for e in again] == [recorded(2).id]
                raise RuntimeError("the handler failed")

        async with inbox.transaction() as tx:  # one claim per transaction
            assert [e.id for e in await inbox.claim(tx, "c", [recorded(2)])] == [recorded(2).id]
        async with inbox.transaction() as tx:  # each consumer name has its own record
            assert [e.id for e in await inbox.claim(tx, "other", batch)] == [
                batch[0].id,
                batch[1].id,
            ]
            rows: list[Any] = await tx.execute("SELECT stream FROM seen ORDER BY stream")
        assert [row[0] for row in rows] == ["account-0", "account-1"]
        assert await inbox.applied("c") == 3
        audit = [e.id async for e in store.read_stream("audit-1")]
        assert audit == [seen.id]  # the rolled-back append is gone
    finally:
        await store.close()
