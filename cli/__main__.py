"""``python -m cli``: the ``sifc`` command (how the service starts its import workers)."""

from cli import main

main()
