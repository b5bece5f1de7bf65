"""The partition transaction index and the coordinator's transaction log, on real files."""

from __future__ import annotations

from pathlib import Path

from streamsource.kafka.log.txn_index import INDEX_FILE, AbortedTxn, TransactionIndex


def test_lso_is_the_first_offset_of_the_oldest_open_transaction(tmp_path: Path) -> None:
    index = TransactionIndex.open(tmp_path, 0, 0)
    assert index.last_stable_offset(10) == 10
    index.begin(7, 10)
    index.begin(8, 12)
    index.begin(7, 11)  # same transaction, later batch: the first offset stays
    assert index.last_stable_offset(20) == 10
    index.end(7, 20, aborted=True)
    assert index.last_stable_offset(21) == 12
    index.end(8, 21, aborted=False)
    assert index.last_stable_offset(22) == 22
    assert index.aborted == [AbortedTxn(7, 10, 20)]


def test_aborted_between_lists_only_transactions_overlapping_the_range(tmp_path: Path) -> None:
    index = TransactionIndex.open(tmp_path, 0, 0)
    for pid, first, marker in ((1, 0, 5), (2, 10, 15), (3, 20, 25)):
        index.begin(pid, first)
        index.end(pid, marker, aborted=True)
    assert [a.producer_id for a in index.aborted_between(6, 30)] == [2, 3]
    assert [a.producer_id for a in index.aborted_between(0, 10)] == [1]
    assert index.aborted_between(26, 40) == []


def test_the_event_loop_only_tries_the_index(tmp_path: Path) -> None:
    """The writer holds the index's lock while it writes the file; the event loop's
    ``try_*`` calls answer None then, rather than wait (its fetch goes to a worker)."""
    index = TransactionIndex.open(tmp_path, 0, 0)
    index.begin(1, 0)
    index.end(1, 5, aborted=True)
    index.begin(2, 8)
    assert index.try_last_stable_offset(10) == 8
    assert index.try_aborted_between(0, 10) == [AbortedTxn(1, 0, 5)]
    with index._lock:  # as during a write
        assert index.try_last_stable_offset(10) is None
        assert index.try_aborted_between(0, 10) is None


def test_the_index_survives_reopening_and_forgets_what_the_log_lost(tmp_path: Path) -> None:
    index = TransactionIndex.open(tmp_path, 0, 0)
    index.begin(1, 0)
    index.end(1, 3, aborted=True)
    index.begin(2, 4)  # still open at the "crash"
    index.begin(3, 9)  # beyond the log end after recovery: never happened
    index.close()
    reopened = TransactionIndex.open(tmp_path, 0, 8)
    assert reopened.aborted == [AbortedTxn(1, 0, 3)]
    assert reopened.open_txns == {2: 4}
    assert reopened.last_stable_offset(8) == 4
    reopened.close()
    # below the log start offset (retention): dropped
    assert TransactionIndex.open(tmp_path, 5, 8).aborted == []


def test_a_torn_index_tail_is_cut_off(tmp_path: Path) -> None:
    index = TransactionIndex.open(tmp_path, 0, 0)
    index.begin(1, 0)
    index.end(1, 2, aborted=True)
    index.close()
    with open(tmp_path / INDEX_FILE, "ab") as f:
        f.write(b"\x00\x01\x02")  # half a record
    assert TransactionIndex.open(tmp_path, 0, 10).aborted == [AbortedTxn(1, 0, 2)]
