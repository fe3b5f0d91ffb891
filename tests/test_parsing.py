"""Answer parsers: table-driven examples plus hypothesis properties (never crash, stay in range)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketai.parsing import BloodPressure, parse_blood_pressure, parse_rating, parse_yes_no


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True), ("Yeah she's here", True), ("yep", True), ("Sí", True), ("placed", True),
        ("no", False), ("nope, not yet", False), ("none", False), ("nothing at all", False),
        ("maybe", None), ("", None), ("yes but not really", None), ("I don't know", None),
        ("not sure", None),
    ],
)  # fmt: skip
def test_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BP 128 over 84", BloodPressure(128, 84)),
        ("128/84", BloodPressure(128, 84)),
        ("it says 84 128", BloodPressure(128, 84)),
        ("the cuff reads 152-96 pulse 70", BloodPressure(152, 96)),
        ("hmm", None),
        ("120", None),
        ("900/800", None),
        ("80/78", None),
    ],
)
def test_blood_pressure(text: str, expected: BloodPressure | None) -> None:
    assert parse_blood_pressure(text) == expected


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("about a 6", 10, 6), ("7/10", 100, 70), ("7 out of 10", 10, 7), ("sixty", 100, 60), ("40%", 100, 40),
        ("6 or 7", 10, 7), ("a hundred", 100, 100), ("200", 100, None), ("11", 10, None), ("no idea", 10, None),
        ("eight", 10, 8), ("0", 100, 0),
    ],
)  # fmt: skip
def test_rating(text: str, scale: int, expected: int | None) -> None:
    assert parse_rating(text, scale) == expected


@given(st.text(max_size=300))
def test_parsers_never_crash_and_stay_in_range(text: str) -> None:
    assert parse_yes_no(text) in (True, False, None)
    bp = parse_blood_pressure(text)
    if bp is not None:
        assert 60 <= bp.systolic <= 260 and 30 <= bp.diastolic <= 180 and bp.systolic > bp.diastolic
    for scale in (10, 100):
        value = parse_rating(text, scale)
        assert value is None or 0 <= value <= scale


@given(st.integers(70, 250), st.integers(40, 150), st.sampled_from(["/", " over ", " / ", "-"]))
def test_blood_pressure_round_trip(systolic: int, diastolic: int, sep: str) -> None:
    if systolic - diastolic < 10:
        return
    assert parse_blood_pressure(f"BP {systolic}{sep}{diastolic}") == BloodPressure(systolic, diastolic)


@given(st.integers(0, 100))
def test_rating_round_trip(value: int) -> None:
    assert parse_rating(f"I'd say {value}", 100) == value
