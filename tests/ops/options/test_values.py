"""Option values: durations both ways, counts, ports, lists, a number or words."""

from __future__ import annotations

import pytest

from ops.options.values import (
    at_least,
    comma_list,
    duration_s,
    format_duration,
    number_or,
    port_number,
)


@pytest.mark.parametrize("seconds", [0, 45, 90, 900, 3600, 5400, 86400, 30 * 86400])
def test_a_shown_duration_reads_back(seconds: int) -> None:
    assert duration_s(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    "parse,text",
    [
        (duration_s, "an hour"),
        (at_least(1), "0"),
        (port_number, "70000"),
        (comma_list(int), "1,x"),
        (number_or(float, ("auto",)), "fast"),
    ],
)
def test_a_bad_value_is_a_value_error_that_quotes_it(parse, text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        parse(text)


def test_lists_and_words() -> None:
    assert comma_list(str)("mmn,esmm") == ("mmn", "esmm")
    assert number_or(float, ("auto",))("auto") == "auto"
    assert number_or(float, ("auto",))("0.01") == 0.01
