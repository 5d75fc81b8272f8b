"""Command lines from one dataclass of arguments (CleanRL style, without a new dependency).

``parse(Args, argv)`` builds an ``argparse`` parser from the dataclass fields: one
``--field-name`` option per field, typed from its default, with the field's
docstring (the string literal under it, as ``tyro`` reads it) as its help.
Booleans get ``--flag/--no-flag``. ``tyro`` would do the same from the same
dataclass; this keeps the project free of it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
from typing import Any, TypeVar

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


def parser_for(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    docs = field_docs(cls)
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flag = "--" + f.name.replace("_", "-")
        help_text = docs.get(f.name, "")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, dest=f.name, type=kind, default=default, help=help_text, metavar=kind.__name__.upper())
    return parser


def parse(cls: type[T], argv: list[str] | None = None, description: str | None = None) -> T:
    """An instance of the dataclass ``cls`` from the command line (``argv=None``: ``sys.argv[1:]``)."""
    ns = parser_for(cls, description).parse_args(argv)
    return cls(**vars(ns))


def as_dict(args: Any) -> dict[str, Any]:
    return dataclasses.asdict(args)
