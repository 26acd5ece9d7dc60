"""``python -m segio``: the same as the ``segio`` command."""

from segio.cli import main

main()
