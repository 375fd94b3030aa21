"""Command-line parsers for `mpesa-ops pull` (being built)."""


def add_parsers(sub, db_help: str) -> None:
    """Register this module's commands on the `mpesa-ops` subparsers."""
