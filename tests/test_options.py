"""Option records check every field's type and limits when built, naming the field in one line."""
from dataclasses import dataclass

import numpy as np
import pytest

from genloom.errors import GenloomError
from genloom.options import Options, checked_value, option, whole_number


@dataclass
class Example(Options):
    count: int = option(3, "a count", min=1)
    rate: float = option(0.5, "a share", min=0, below=1)
    scale: float | None = option(None, "a scale", above=0)
    name: str = option("a", "a choice", choices=("a", "b"))
    flag: bool = option(False, "a switch")
    names: list[str] | None = option(None, "some names")

    def check(self) -> None:
        if self.flag and self.name == "b":
            raise GenloomError("flag goes with name 'a' only")


def test_values_come_back_as_their_fields_type():
    example = Example(count=np.int64(4), rate=0, scale=2, flag=np.bool_(True))
    assert (example.count, example.rate, example.scale, example.flag) == (4, 0.0, 2.0, True)
    assert type(example.count) is int and type(example.rate) is float and type(example.flag) is bool
    assert Example(count=5.0).count == 5  # a whole float is a whole number (JSON may write 5.0)
    assert Example(names=("x", "v")).names == ["x", "v"]  # a tuple of names, kept as a list (JSON's)


@pytest.mark.parametrize("options, message", [
    ({"count": 2.5}, "count must be a whole number; got 2.5"),
    ({"count": "3"}, "count must be a whole number; got '3'"),
    ({"count": True}, "count must be a whole number; got True"),
    ({"count": 0}, "count must be at least 1; got 0"),
    ({"rate": 1.0}, r"rate must lie in \[0, 1\); got 1.0"),
    ({"rate": float("nan")}, "rate must be a finite number; got nan"),
    ({"rate": "half"}, "rate must be a finite number; got 'half'"),
    ({"scale": 0}, "scale must be greater than 0; got 0.0"),
    ({"name": "c"}, "name must be one of a, b; got 'c'"),
    ({"name": 1}, "name must be text; got 1"),
    ({"flag": 1}, "flag must be true or false; got 1"),
    ({"names": "x"}, "names must be a list of names; got 'x'"),
    ({"names": []}, r"names must be a list of names; got \[\]"),
    ({"names": ["x", 2]}, r"names must be a list of names; got \['x', 2\]"),
    ({"flag": True, "name": "b"}, "flag goes with name 'a' only"),
])
def test_a_wrong_value_names_its_field(options, message):
    with pytest.raises(GenloomError, match=message):
        Example(**options)


def test_unknown_names_are_listed_with_the_known_ones():
    with pytest.raises(GenloomError, match="unknown setting 'cout' for the example; settings: count, flag, name, "
                                           "names, rate, scale"):
        Example.from_options({"cout": 2}, "setting", "the example")
    assert Example.from_options({"count": 7}).count == 7


def test_plain_arguments_use_the_same_checks():
    assert whole_number("n", np.int32(3)) == 3
    for value in (0, 2.0, "2", None, False):
        with pytest.raises(GenloomError, match=f"n must be a whole number of at least 1; got {value!r}"):
            whole_number("n", value)
    assert checked_value("alpha", 2, float, {"above": 0}) == 2.0
    with pytest.raises(GenloomError, match="at most 4"):
        checked_value("k", 5, int, {"max": 4})
