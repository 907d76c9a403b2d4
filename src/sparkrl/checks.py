"""Value checks shared by the typed configurations, below every other module.

`bool` is a subclass of `int` in Python, so `True` would pass a plain number check as 1.0;
these checks refuse it, since a flag written where a number belongs is a mistake in the input.
"""

from __future__ import annotations


def is_number(value: object) -> bool:
    """An int or a float, never a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_probability(value: object) -> bool:
    """A number (see `is_number`) in [0, 1]."""
    return is_number(value) and 0.0 <= value <= 1.0
