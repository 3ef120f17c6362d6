"""Checked settings: pydantic constraints and the one-line errors that state them.

Every range in ``lgn`` is written once, as a pydantic constraint, and every
failure reads ``NAME must be WORDS, got VALUE`` on one line, the words saying
what the constraint asks:

- a configuration section (``[model]``, ``[train]``, ``[data]``, and the
  discovery settings ``learn``, ``episodic``, ``discovery``) is a class
  made a pydantic dataclass by :func:`section`, each field ``Annotated`` with
  :func:`limit` (words stating the range: a value of the wrong type names its
  type instead) or :func:`kind` (words stating type and range together);
- a count passed as an argument is checked by :func:`check_positive_int`.

Values are checked strictly: no coercion (``'3'`` is not 3, ``True`` is not 1),
and floats must be finite.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
import typing
from typing import Annotated

import pydantic.dataclasses
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

__all__ = ["SettingTypeError", "STRICT", "limit", "kind", "section", "describe", "check_positive_int",
           "PositiveInt", "OptionalPositiveInt"]


class SettingTypeError(TypeError, ValueError):
    """A setting of the wrong type; a ``ValueError`` too, like every other bad setting."""


STRICT = ConfigDict(strict=True, allow_inf_nan=False)  # no coercion ('3' is not 3, 1 is not true), finite floats
_SECTION = ConfigDict(STRICT, extra="forbid")  # and a section refuses a key it does not have

_STATES_TYPE = "states_type"  # a field whose words state its type as well as its range (:func:`kind`)


def limit(words: str, **constraints) -> FieldInfo:
    """A pydantic constraint and the words that state its range: ``NAME must be WORDS, got VALUE``.

    A value of the wrong type is told the type instead (``must be an integer``).
    """
    return Field(description=words, **constraints)


def kind(words: str, **constraints) -> FieldInfo:
    """A pydantic constraint and words that state type and range together (``'a positive integer'``):
    every failure of the field, of type or of range, reads ``NAME must be WORDS, got VALUE``."""
    return Field(description=words, json_schema_extra={_STATES_TYPE: True}, **constraints)


def section(name: str):
    """Make a class the pydantic dataclass of the settings section ``name``, its errors one line each.

    pydantic checks every field's type (strictly) and range; a failure raises
    ``ValueError`` ``name.key must be WORDS, got VALUE`` with the words of the
    field's :func:`limit` or :func:`kind`, or :class:`SettingTypeError` for a
    value of the wrong type. An error of ``__post_init__`` (a check that
    compares fields) comes through as it was raised.
    """
    def make(cls):
        cls = pydantic.dataclasses.dataclass(cls, config=_SECTION)
        validate = cls.__init__

        @functools.wraps(validate)
        def __init__(self, *args, **kwargs):
            try:
                validate(self, *args, **kwargs)
            except ValidationError as e:
                names = [f.name for f in dataclasses.fields(cls)]
                raise _one_line(name, cls, e.errors()[0], {**dict(zip(names, args)), **kwargs}) from None

        cls.__init__ = __init__
        return cls
    return make


def _one_line(section_name: str, cls: type, error: dict, given: dict) -> ValueError:
    """The one-line error of pydantic's first ``error`` in building ``cls`` from ``given`` (its arguments by name)."""
    if error["type"] == "value_error" and not error["loc"]:  # raised by __post_init__
        return error["ctx"]["error"]
    names = [f.name for f in dataclasses.fields(cls)]
    key = error["loc"][0] if error["loc"] else None
    if isinstance(key, int):  # a positional argument
        key = names[key] if key < len(names) else None
    if error["type"] == "unexpected_keyword_argument":
        return ValueError(f"unknown config key {section_name}.{key}; known in [{section_name}]: {', '.join(names)}")
    if key not in names:  # not about one setting: too many positional arguments
        return SettingTypeError(f"[{section_name}] takes the settings {', '.join(names)}: {error['msg']}")
    where, value, info = f"{section_name}.{key}", given.get(key), cls.__pydantic_fields__[key]
    if info.description is not None and error["type"] in _OUT_OF_RANGE:
        return ValueError(f"{where} must be {info.description}, got {value!r}")
    if info.description is not None and (info.json_schema_extra or {}).get(_STATES_TYPE):
        return SettingTypeError(f"{where} must be {info.description}, got {value!r}")
    return SettingTypeError(f"{where} must be {describe(typing.get_type_hints(cls)[key])}, got {value!r}")


# pydantic's error types for a value of the right type outside its range (NaN and Inf count as out of range)
_OUT_OF_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "string_pattern_mismatch",
                 "finite_number"}


def describe(hint) -> str:
    """The type ``hint`` in words: ``'an integer'``, ``'a number or none'``, ``'a list of strings'``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else describe(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return "a list of " + {int: "integers", float: "numbers", str: "strings"}[typing.get_args(hint)[0]]
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a table"}.get(hint, str(hint))


PositiveInt = Annotated[int, Field(ge=1)]  # an int ≥ 1 (checked strictly: a bool is no integer)
OptionalPositiveInt = PositiveInt | None  # the same, or None

_ADAPTERS = {False: TypeAdapter(PositiveInt, config=STRICT), True: TypeAdapter(OptionalPositiveInt, config=STRICT)}


def check_positive_int(value, name: str, *, optional: bool = False) -> int | None:
    """``value`` as an int if it is an integer ≥ 1 (a Python or numpy integer, not a bool), else ``ValueError``
    ``NAME must be a positive integer, got VALUE``. ``optional``: None passes too (``... or None``).

    About 0.5 µs a call (pydantic's part 0.4 µs): for arguments, never in a loop over elements or batches.
    """
    plain = value
    if type(value) is not int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        plain = int(value)  # a numpy integer
    try:
        return _ADAPTERS[optional].validate_python(plain)
    except ValidationError:
        words = "a positive integer or None" if optional else "a positive integer"
        raise ValueError(f"{name} must be {words}, got {value!r}") from None
