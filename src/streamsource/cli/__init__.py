"""The `streamsource` command line: one module per command group."""

from __future__ import annotations

import importlib

import click

# name -> module holding a click command or group called `command`
_COMMANDS = {
    "demo": "streamsource.cli.demo",
    "store": "streamsource.cli.store",
    "projections": "streamsource.cli.projections",
    "broker": "streamsource.cli.broker",
    "relay": "streamsource.cli.relay",
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


@click.group(cls=_LazyGroup)
@click.version_option(package_name="streamsource")
def cli() -> None:
    """streamsource: event sourcing and Kafka-compatible event streaming, embedded."""


def main() -> None:
    cli()
