"""The README's Python examples run as written: each ```python block, in order, in one namespace."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(BLOCK.findall(README.read_text(encoding="utf-8"))) >= 5


@pytest.mark.timeout(120)
def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STREAMSOURCE_STORE", raising=False)
    namespace: dict[str, object] = {"__name__": "readme"}
    for index, block in enumerate(BLOCK.findall(README.read_text(encoding="utf-8"))):
        code = compile(block, f"README.md python block {index + 1}", "exec")
        exec(code, namespace)
    assert os.listdir(tmp_path), "the README examples should have written their store files"
