"""How a backend lets subscribers learn of new appends: declared by the recorder
(``recorder.wakeups``), the same for every recorder on one store, different for another."""

from __future__ import annotations

from typing import Any

import psycopg

from conformance.helpers import events
from streamsource.eventstore.appended import signal_for
from streamsource.eventstore.recorder import Wakeups


def test_recorders_of_one_store_declare_the_same_wakeups(
    store: Any, store_factory: Any, open_again: Any
) -> None:
    twin = open_again(store)  # the same URL, while the first store stays open
    other = store_factory()
    mine, theirs, elsewhere = (s.recorder.wakeups for s in (store, twin, other))
    assert all(isinstance(w, Wakeups) for w in (mine, theirs, elsewhere))
    assert mine.key != elsewhere.key
    if store.recorder.backend == "memory":  # each memory:// is a store of its own
        assert mine.key != theirs.key
        assert mine.only_this_process
        assert mine.listen is None
        return
    assert mine == theirs
    assert not mine.only_this_process  # other processes may append to a file or a server
    assert (mine.listen is not None) == (store.recorder.backend == "postgresql")
    if mine.listen is not None:
        assert elsewhere.listen != mine.listen  # another schema: another payload


def test_an_append_wakes_subscribers_of_every_recorder_of_the_store(
    store: Any, store_factory: Any, open_again: Any
) -> None:
    twin = open_again(store)
    other = store_factory()
    signal, unrelated = signal_for(store.recorder), signal_for(other.recorder)
    seen, unrelated_seen = signal.seq, unrelated.seq
    store.append("s-1", events("A"))
    assert signal.seq > seen
    seen = signal.seq
    twin.append("s-1", events("B"))
    if store.recorder.backend == "memory":  # twin is another store
        assert signal.seq == seen
    else:
        assert signal.seq > seen
    assert unrelated.seq == unrelated_seen


def test_a_declared_listen_hears_the_stores_appends(store: Any, open_again: Any) -> None:
    listen = store.recorder.wakeups.listen
    if listen is None:  # nothing to hear: subscribers rely on the signal and polling
        assert store.recorder.backend != "postgresql"
        return
    twin = open_again(store)
    with psycopg.connect(listen.conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"LISTEN {listen.channel}")
        twin.append("s-1", events("A"))
        heard = [n.payload for n in conn.notifies(timeout=10.0, stop_after=1)]
    assert heard == [listen.payload]
