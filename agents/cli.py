"""Command lines from one dataclass of arguments (CleanRL style, without a new dependency).

``parse(Args, argv)`` builds an ``argparse`` parser from the dataclass fields: one
``--field-name`` option per field, typed from its default, with the field's
docstring (the string literal under it, as ``tyro`` reads it) as its help.
Booleans get ``--flag/--no-flag``; a field annotated ``Literal[...]`` takes only
those values. ``tyro`` would do the same from the same dataclass; this keeps the
project free of it (argparse needed three fixes, not a new dependency).

What it keeps true:
- a bad value (an unknown ``--algo``, a number that ``Args.__post_init__`` or the
  ``check`` callback refuses with ``ValueError``) ends the program with one line on
  stderr and exit code 2, before anything is created;
- help shows the module docstring with its paragraphs and each option's one-line
  doc with its default once (none when the default is empty or the doc already
  says what the default means).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

T = TypeVar("T")


def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` from the string literals that follow each annotated field in the class body."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written (paragraphs kept); ``(default: x)`` once, and only when it says something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or "default:" in text or default in (None, "", argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``prog: error: ...``) and exit code 2, without the usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _choices(hint: Any) -> tuple | None:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    return None


def parser_for(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    parser = Parser(description=description, formatter_class=HelpFormatter)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flag = "--" + f.name.replace("_", "-")
        help_text = docs.get(f.name, "")
        choices = _choices(hints.get(f.name))
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif choices is not None:
            shown = "{" + ",".join(str(c) for c in choices if c != "") + "}"
            parser.add_argument(flag, dest=f.name, type=type(default), choices=choices, default=default, help=help_text, metavar=shown)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=f.name, type=kind, default=default, help=help_text, metavar=kind.__name__.upper())
    return parser


def parse(cls: type[T], argv: list[str] | None = None, description: str | None = None,
          check: Callable[[T], Any] | None = None) -> T:
    """An instance of the dataclass ``cls`` from the command line (``argv=None``: ``sys.argv[1:]``).

    ``ValueError`` from ``cls(...)`` (its ``__post_init__``) or from ``check(args)`` exits with
    the message on one line and code 2, as argparse does for a malformed option.
    """
    parser = parser_for(cls, description)
    ns = parser.parse_args(argv)
    try:
        args = cls(**vars(ns))
        if check is not None:
            check(args)
    except ValueError as e:
        parser.error(" ".join(str(e).split()))
    return args


def require(ok: bool, message: str) -> None:
    """``ValueError(message)`` unless ``ok``: the check of one argument in ``Args.__post_init__``."""
    if not ok:
        raise ValueError(message)


def as_dict(args: Any) -> dict[str, Any]:
    return dataclasses.asdict(args)
