"""The `bnnet` command: one sub-command per module, each registering its own flags."""
from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order `bnnet --help` lists them. Each has
# register(subparsers), which adds its parser and sets `handler`.
COMMAND_MODULES = ("train", "evaluate", "predict", "experiment", "precise_bn", "fold", "recalibrate", "inspect_model")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="bnnet", description="Train and test neural networks with batch normalization.")
    parser.add_argument("--version", action="version", version=f"bnnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, KeyError, OSError) as error:
        # User errors (bad flags, bad files) get one clear line, not a traceback.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"bnnet {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
