"""Reading JSON and TOML text with a bound on nesting depth.

Python's parsers recurse once per level of nesting, so a few thousand nested
``[`` in a file a user hands us would end in a ``RecursionError`` (and below
that limit, in code that walks the parsed value). No file ``lgn`` reads nests
more than a few levels, so :func:`load_json` and :func:`load_toml` refuse
anything deeper than :data:`MAX_DEPTH` as a ``ValueError`` naming the source.
"""

from __future__ import annotations

import json
import tomllib

__all__ = ["MAX_DEPTH", "NestingError", "load_json", "load_toml", "depth"]

MAX_DEPTH = 32  # levels of arrays and tables/objects in one value


class NestingError(ValueError):
    """A JSON or TOML text nested more than :data:`MAX_DEPTH` levels deep."""


def depth(value) -> int:
    """Levels of lists and dicts in ``value`` (0 for a scalar), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, (list, tuple)):
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
        if level + 1 > MAX_DEPTH:
            break
        stack.extend((v, level + 1) for v in item)
    return deepest


def _bounded(parse, text, source: str):
    try:
        value = parse(text)
    except RecursionError:
        value = None
    else:
        if depth(value) <= MAX_DEPTH:
            return value
    raise NestingError(f"{source} is nested more than {MAX_DEPTH} levels deep")


def load_json(text: str | bytes, source: str):
    """``json.loads(text)``, refusing more than :data:`MAX_DEPTH` levels; ``json.JSONDecodeError`` as json raises it."""
    return _bounded(json.loads, text, source)


def load_toml(text: str, source: str) -> dict:
    """``tomllib.loads(text)``, refusing more than :data:`MAX_DEPTH` levels; ``tomllib.TOMLDecodeError`` as usual."""
    return _bounded(tomllib.loads, text, source)
