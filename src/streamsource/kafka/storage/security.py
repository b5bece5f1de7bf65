"""The broker's security files: SCRAM users (``users.json``) and ACLs (``acls.json``).

Small JSON documents replaced atomically (``write_json``). Both the running broker (the
admin APIs) and ``streamsource broker users ...`` (another process, while the broker runs)
change them, so every read-modify-write holds an ``flock`` on ``security.lock``: neither
loses the other's change. The broker notices a file changed by its modification time and
size and reloads it (``SecurityFile.load_if_changed``): no restart. Blocking: call from a
worker thread when serving requests.
"""

from __future__ import annotations

import base64
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from streamsource.errors import CorruptStoreError
from streamsource.kafka.security.acl import AclBinding
from streamsource.kafka.security.scram import HASHES, ScramCredential
from streamsource.kafka.storage.files import StorageError, read_json, write_json

USERS_FILE = "users.json"
ACLS_FILE = "acls.json"
_LOCK_FILE = "security.lock"

T = TypeVar("T")

#: user -> mechanism -> credential
Users = dict[str, dict[str, ScramCredential]]


class SecurityFile:
    """One JSON document in ``directory`` and the stamp it was last read at."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / name
        self._stamp: tuple[int, int] | None = None

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def changed(self) -> bool:
        return self._current_stamp() != self._stamp

    def read(self) -> Any:
        self._stamp = self._current_stamp()
        return read_json(self.path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's security lock (read-modify-write by any process)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(self.directory / _LOCK_FILE, "cannot open", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def update(self, empty: Callable[[], Any], change: Callable[[Any], T]) -> T:
        """Under the lock: read the document (``empty()`` if absent), let ``change`` edit
        it in place and return a result, write it back; returns the result."""
        with self.locked():
            document = read_json(self.path)
            if document is None:
                document = empty()
            result = change(document)
            write_json(self.path, document, mode=0o600)  # keys: only the broker's user
            self._stamp = self._current_stamp()
            return result


# -- users -----------------------------------------------------------------------------------


class UserStore:
    """The SCRAM users of a broker data dir: ``users`` (reloaded when the file changed),
    ``edit`` (read-modify-write under the lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.file = SecurityFile(data_dir, USERS_FILE)
        self.users: Users = {}
        self._decoy_secret = os.urandom(32)  # no file: no users, nothing to give away

    @property
    def decoy_secret(self) -> bytes:
        """What unknown users' made-up salts derive from: kept in the file, so that they
        stay the same across restarts (a changing salt would tell a user does not exist)."""
        return self._decoy_secret

    def reload_if_changed(self) -> Users:
        if self.file.changed():
            document = self.file.read()
            self.users = _parse_users(document, self.file.path)
            self._take_secret(document)
        return self.users

    def _take_secret(self, document: Any) -> None:
        if isinstance(document, dict) and isinstance(document.get("decoy_secret"), str):
            self._decoy_secret = base64.b64decode(document["decoy_secret"])

    def edit(self, change: Callable[[Users], T]) -> T:
        """``change(users)`` edits the users in place; they are written back atomically."""

        def on_document(document: dict[str, Any]) -> T:
            users = _parse_users(document, self.file.path)
            result = change(users)
            document["version"] = 1
            document.setdefault("decoy_secret", base64.b64encode(os.urandom(32)).decode())
            self._take_secret(document)
            document["users"] = {
                name: {m: _credential_document(c) for m, c in mechanisms.items()}
                for name, mechanisms in users.items()
                if mechanisms
            }
            self.users = {name: dict(m) for name, m in users.items() if m}
            return result

        return self.file.update(lambda: {"version": 1, "users": {}}, on_document)


def _parse_users(document: Any, path: Path) -> Users:
    if document is None:
        return {}
    try:
        users: Users = {}
        for name, mechanisms in document["users"].items():
            users[str(name)] = {
                mechanism: ScramCredential(
                    mechanism,
                    base64.b64decode(entry["salt"]),
                    int(entry["iterations"]),
                    base64.b64decode(entry["stored_key"]),
                    base64.b64decode(entry["server_key"]),
                )
                for mechanism, entry in mechanisms.items()
                if mechanism in HASHES
            }
        return users
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptStoreError(f"{path} is not a users file: {exc!r}") from exc


def _credential_document(credential: ScramCredential) -> dict[str, Any]:
    return {
        "salt": base64.b64encode(credential.salt).decode(),
        "iterations": credential.iterations,
        "stored_key": base64.b64encode(credential.stored_key).decode(),
        "server_key": base64.b64encode(credential.server_key).decode(),
    }


class AclStore:
    """The ACL bindings of a broker data dir (``acls.json``); ``edit`` under the lock."""

    def __init__(self, data_dir: Path) -> None:
        self.file = SecurityFile(data_dir, ACLS_FILE)

    def load(self) -> list[AclBinding]:
        return _parse_acls(self.file.read(), self.file.path)

    def edit(self, change: Callable[[list[AclBinding]], T]) -> tuple[list[AclBinding], T]:
        """``change(bindings)`` edits the list in place; it is written back atomically.
        Returns the bindings as written and ``change``'s result."""

        def on_document(document: dict[str, Any]) -> tuple[list[AclBinding], T]:
            bindings = _parse_acls(document, self.file.path)
            result = change(bindings)
            bindings = list(dict.fromkeys(bindings))
            document["version"] = 1
            document["acls"] = [b.to_document() for b in bindings]
            return bindings, result

        return self.file.update(lambda: {"version": 1, "acls": []}, on_document)


def _parse_acls(document: Any, path: Path) -> list[AclBinding]:
    if document is None:
        return []
    try:
        return [AclBinding.from_document(row) for row in document["acls"]]
    except (KeyError, TypeError, ValueError) as exc:  # InvalidAcl is a ValueError
        raise CorruptStoreError(f"{path} is not an ACL file: {exc!r}") from exc
