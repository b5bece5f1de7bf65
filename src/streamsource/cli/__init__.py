"""The `streamsource` command line: one module per command group.

Every error, from any command, is one line ``error: ...`` on stderr and a non-zero exit:
the commands' own failures print it themselves, and the root group turns click's usage
errors (an unknown option, a missing argument; exit code 2) into the same shape instead of
click's usage block with its capitalised ``Error:``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

# name -> module holding a click command or group called `command`
_COMMANDS = {
    "demo": "streamsource.cli.demo",
    "store": "streamsource.cli.store",
    "projections": "streamsource.cli.projections",
    "broker": "streamsource.cli.broker",
    "relay": "streamsource.cli.relay",
    "console": "streamsource.cli.console",
    "sagas": "streamsource.cli.sagas",
    "streams": "streamsource.cli.streams",
    "messages": "streamsource.cli.messages",
    "mall": "streamsource.cli.mall",
}


class _LazyGroup(click.Group):
    """Imports a command's module only when it runs, so `--help` and each command start fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = _COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        command = importlib.import_module(module_name).command
        assert isinstance(command, click.Command)
        return command

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("interrupted", 1)
        sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    first, _, _ = message.strip().partition("\n")
    click.echo(f"error: {first}", err=True)
    sys.exit(code)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="streamsource")
def cli() -> None:
    """streamsource: event sourcing and Kafka-compatible event streaming, embedded."""


def main() -> None:
    cli()
