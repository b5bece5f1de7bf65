"""The store works the same under ``python -O``, which strips every ``assert``: nothing it
does may depend on one (reads once filled private slots behind asserts)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    import uuid

    import streamsource as ss

    assert 0, "this line proves that asserts are stripped"
    given = uuid.uuid4()
    with ss.open_store(f"sqlite:///{sys.argv[1]}") as store:
        events = [ss.NewEvent("Opened", {"n": 1}), ss.NewEvent("Noted", {"n": 2}, id=given)]
        store.append("account-1", events, ss.NO_STREAM)
        read = list(store.read_all())
    print([(e.id == n.id, type(e.id).__name__, e.version, e.type, e.data) for e, n in zip(read, events)])
    """
)


def test_reads_and_appends_are_the_same_under_python_dash_o(tmp_path: Path) -> None:
    script = tmp_path / "use_store.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-O", str(script), str(tmp_path / "store.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "[(True, 'UUID', 0, 'Opened', {'n': 1}), (True, 'UUID', 1, 'Noted', {'n': 2})]"
    )
