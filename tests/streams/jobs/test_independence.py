"""A stream app must run against any Kafka cluster unchanged: the streams package never
imports the broker, neither in its source nor at run time. The one module under
``streamsource.kafka`` it may load is the client-side security settings,
``streamsource.kafka.client_security`` (``security.protocol``, ``sasl.*``, ``ssl.*``, as any
client takes them), which imports nothing the broker runs on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import streamsource.streams

PACKAGE = Path(streamsource.streams.__file__).parent
CLIENT_SECURITY = "streamsource.kafka.client_security"


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_no_module_of_the_package_imports_the_broker() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 5
    offending = {
        f"{path.name}: {name}"
        for path in modules
        for name in _imports(path)
        if (name == "streamsource.kafka" or name.startswith("streamsource.kafka."))
        and name != CLIENT_SECURITY
    }
    assert not offending


def test_running_an_app_loads_nothing_of_the_broker() -> None:
    probe = (
        "import sys, streamsource.streams as s, streamsource.cli.streams;"
        "app = s.App('127.0.0.1:1', 'g');"
        "app.stream(app.topic('t')).window(s.Tumbling(1)).count().to(app.topic('o'));"
        "print(sorted(m for m in sys.modules if m.startswith('streamsource.kafka.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout))  # the module names the probe printed
    assert loaded <= {CLIENT_SECURITY}, loaded
