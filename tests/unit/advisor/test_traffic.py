"""Traces in the formats users have, and synthesized patterns."""

from __future__ import annotations

import itertools

import pytest

from modelplane.advisor.rules import Pattern
from modelplane.advisor.traffic import parse_trace, synthesize
from modelplane.errors import InvalidInput


def test_csv_one_timestamp_per_line_starts_at_zero_sorted() -> None:
    assert parse_trace("105.5\n100\n101.25\n") == [0.0, 1.25, 5.5]


def test_csv_with_a_timestamp_column() -> None:
    text = "id,timestamp,path\n1,10,/a\n2,12.5,/b\n"
    assert parse_trace(text, "t.csv") == [0.0, 2.5]


def test_csv_iso_datetimes() -> None:
    text = "2026-12-02T10:00:00Z\n2026-12-02T10:00:01.500Z\n"
    assert parse_trace(text) == [0.0, 1.5]


def test_json_list_objects_and_wrapped() -> None:
    assert parse_trace("[3, 1, 2]") == [0.0, 1.0, 2.0]
    assert parse_trace('[{"t": 5}, {"t": 7}]') == [0.0, 2.0]
    assert parse_trace(b'{"timestamps": [1, 4]}', "x.json") == [0.0, 3.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("1\nsoon\n", "neither seconds nor an ISO 8601"),
        ("[1, true]", "not a timestamp"),
        ('[{"when": 1}]', "no timestamp field"),
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "list of timestamps"),
        ("1\nnan\n", "not a finite number"),
    ],
)
def test_bad_traces_are_named(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_trace(text)


def test_synthesized_traffic_is_seeded_and_at_the_rate() -> None:
    a = synthesize(Pattern.steady, 3600, 3600, seed=1)
    assert a == synthesize(Pattern.steady, 3600, 3600, seed=1)
    assert len(a) == pytest.approx(3600, rel=0.06)
    assert all(0 <= t < 3600 for t in a)


def test_bursty_traffic_comes_in_groups_of_the_peak() -> None:
    times = synthesize(Pattern.bursty, 600, 3600, peak=5, seed=2)
    assert len(times) % 5 == 0
    groups = [times[i : i + 5] for i in range(0, len(times), 5)]
    assert all(g[-1] - g[0] <= 0.05 for g in groups[:-1])


def test_spaced_traffic_is_regular() -> None:
    times = synthesize(Pattern.spaced, 6, 3600)
    assert len(times) == 6
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(480 <= g <= 720 for g in gaps)
