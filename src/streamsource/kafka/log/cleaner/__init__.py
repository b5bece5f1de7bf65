"""Log compaction: keep the latest record per key in a log's closed segments.

``core`` decides which records stay (pure, no files), ``worker.clean_log`` cleans one
partition log in a worker thread, and ``swap`` makes the exchange of cleaned segments
crash-safe.
"""

from streamsource.kafka.log.cleaner.worker import CleanResult, clean_log

__all__ = ["CleanResult", "clean_log"]
