"""Opening stores by URL: schemes, defaults, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import streamsource as ss
from streamsource.eventstore import backends


@pytest.mark.parametrize("url", ["mysql://localhost/db", "kafka://x", "memry://"])
def test_unknown_scheme_is_named_in_the_error(url: str) -> None:
    scheme = url.split(":")[0]
    with pytest.raises(ss.InterfaceError, match=repr(scheme)):
        ss.open_store(url)


@pytest.mark.parametrize("url", ["store.db", "", "://x", 42])
def test_url_without_scheme_is_refused(url: object) -> None:
    with pytest.raises(ss.InterfaceError):
        ss.open_store(url)  # type: ignore[arg-type]


def test_scheme_is_case_insensitive() -> None:
    assert backends.scheme_of("MEMORY://") == "memory"
    ss.open_store("Memory://").close()


def test_default_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSOURCE_STORE", "memory://")
    assert ss.eventstore.default_url() == "memory://"
    with ss.open_store() as store:
        assert store.stats()["backend"] == "memory"


def test_default_url_without_environment_is_a_sqlite_file_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STREAMSOURCE_STORE", raising=False)
    assert ss.eventstore.default_url() == "sqlite:///streamsource.db"


async def test_open_async_store_uses_the_same_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSOURCE_STORE", "memory://")
    store = await ss.open_async_store()
    async with store:
        result = await store.append("s-1", [ss.NewEvent("A", {"x": 1})], ss.NO_STREAM)
        assert [e.data async for e in store.read_stream("s-1")] == [{"x": 1}]
        assert result.version == 0
    with pytest.raises(ss.InterfaceError, match="'nope'"):
        await ss.open_async_store("nope://")


def test_a_scheme_whose_module_is_absent_is_not_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(backends.BACKENDS, "ghost", "streamsource.eventstore.backends.ghost")
    with pytest.raises(ss.NotSupportedError, match="ghost"):
        ss.open_store("ghost://x")


def test_every_public_name_resolves() -> None:
    missing = [name for name in ss.__all__ if not hasattr(ss, name)]
    assert missing == []
    assert len(set(ss.__all__)) == len(ss.__all__)
    assert issubclass(ss.WrongExpectedVersion, ss.IntegrityError)
    assert issubclass(ss.EventTooLarge, ss.DataError)
    assert issubclass(ss.InvalidEventType, ss.ProgrammingError)
