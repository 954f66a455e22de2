"""``python -m zoo`` runs the ``zoo`` command line."""

from zoo.cli import main

main()
