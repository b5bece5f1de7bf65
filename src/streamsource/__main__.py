"""``python -m streamsource``: the same as the ``streamsource`` command."""

from streamsource.cli import main

main()
