import math

import pytest

from sparkrl.checks import is_number, is_probability


@pytest.mark.parametrize("value,number,probability", [
    (0, True, True), (1, True, True), (0.5, True, True), (1.5, True, False), (-0.1, True, False),
    (math.inf, True, False), (True, False, False), (False, False, False), (None, False, False),
    ("0.5", False, False),
])
def test_numbers_and_probabilities(value, number, probability):
    assert is_number(value) is number
    assert is_probability(value) is probability
