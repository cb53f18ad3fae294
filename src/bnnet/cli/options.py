"""Map a config dataclass to argparse flags, one field to one flag, and back."""
from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields
from typing import Any


def _base_type(annotation: Any) -> type:
    """int for `int | None`, and so on (annotations are strings under `from __future__`)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"int": int, "float": float, "str": str, "bool": bool})  # noqa: S307 - our own annotations
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """Add ``--field-name`` for every field; defaults are suppressed so that only
    the flags a user typed override a ``--config`` file."""
    for spec in fields(config_class):
        flag = spec.metadata.get("flag") or "--" + spec.name.replace("_", "-")
        kind = _base_type(spec.type)
        default = None if spec.default is MISSING else spec.default
        help_text = f"{spec.metadata.get('help', '')} (default: {default})"
        if kind is bool:
            parser.add_argument(flag, dest=spec.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, dest=spec.name, type=kind, choices=spec.metadata.get("choices"),
                                default=argparse.SUPPRESS, help=help_text, metavar=spec.name.upper()
                                if not spec.metadata.get("choices") else None)
    parser.add_argument("--config", dest="config_file", default=None,
                        help="JSON file of settings (same names as the flags, with underscores); flags override it")


def config_from_args(args: argparse.Namespace, config_class: type):
    """Build the config: class defaults, then the --config file, then typed flags."""
    values: dict[str, Any] = {}
    if getattr(args, "config_file", None):
        values.update(config_class.from_json_file(args.config_file))
    names = {spec.name for spec in fields(config_class)}
    values.update({key: value for key, value in vars(args).items() if key in names})
    return config_class.from_dict(values)


def format_config(config: Any) -> str:
    """The resolved configuration, one `name = value` per line."""
    lines = ["config:"]
    lines += [f"  {spec.name} = {getattr(config, spec.name)!r}" for spec in fields(config)]
    return "\n".join(lines)
