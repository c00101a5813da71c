"""The ``perdure`` command-line interface: ``main`` parses and dispatches; ``worker`` runs a
worker; ``runs`` holds the client commands; ``output`` prints for a person. It goes through the
public engine API only."""

from perdure.cli.main import main

__all__ = ["main"]
