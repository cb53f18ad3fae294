"""Placeholder: this sub-command is being written (see the issue tracker)."""


def register(subparsers) -> None:
    """Adds nothing yet."""
