"""lgn.settings: the one argument check and the one-line errors of a config section."""

from typing import Annotated

import numpy as np
import pytest

from lgn.settings import SettingTypeError, check_positive_int, kind, limit, section


@pytest.mark.parametrize("value", [1, 7, 2 ** 70, np.int64(3), np.uint8(1)])
def test_a_positive_integer_passes_as_an_int(value):
    checked = check_positive_int(value, "n")
    assert checked == int(value) and type(checked) is int


@pytest.mark.parametrize("value", [0, -1, True, np.bool_(True), 2.0, np.float64(2.0), "3", None, [1], np.int64(0)])
def test_anything_else_is_refused_in_one_line_naming_it(value):
    with pytest.raises(ValueError) as raised:
        check_positive_int(value, "order")
    assert str(raised.value) == f"order must be a positive integer, got {value!r}"


def test_optional_lets_none_through_and_says_so():
    assert check_positive_int(None, "n_clusters", optional=True) is None
    assert check_positive_int(5, "n_clusters", optional=True) == 5
    with pytest.raises(ValueError, match=r"^n_clusters must be a positive integer or None, got 0$"):
        check_positive_int(0, "n_clusters", optional=True)


@section("toy")
class _Toy:
    count: Annotated[int, limit("at least 2", ge=2)] = 2   # words for the range: a wrong type names its type
    size: Annotated[int, kind("a positive integer", ge=1)] = 1  # words for type and range alike
    label: str = ""

    def __post_init__(self) -> None:
        if self.label == "bad":
            raise ValueError("label is bad")


@pytest.mark.parametrize("given, error, message", [
    ({"count": 1}, ValueError, "toy.count must be at least 2, got 1"),
    ({"count": "3"}, SettingTypeError, "toy.count must be an integer, got '3'"),
    ({"size": 0}, ValueError, "toy.size must be a positive integer, got 0"),
    ({"size": 1.5}, SettingTypeError, "toy.size must be a positive integer, got 1.5"),
    ({"label": 3}, SettingTypeError, "toy.label must be a string, got 3"),
    ({"colour": 3}, ValueError, "unknown config key toy.colour; known in [toy]: count, size, label"),
    ({"label": "bad"}, ValueError, "label is bad"),
])
def test_a_section_says_what_failed_in_one_line(given, error, message):
    with pytest.raises(error) as raised:
        _Toy(**given)
    assert str(raised.value) == message and type(raised.value) is error
