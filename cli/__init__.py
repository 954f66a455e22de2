"""The ``zoo`` command line, installed as ``zoo.cli``: a thin shell over the library."""

from zoo.cli.app import cli, main

__all__ = ["cli", "main"]
