"""Times as people read them: a wall-clock time in a zone, and the zone's name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from web.times import WallClockError, local_time, wall_clock, zone_name

WEST = "America/Vancouver"


@pytest.mark.parametrize(
    ("naive", "utc"),
    [
        ("2099-01-15T09:00", "2099-01-15T17:00"),  # PST, UTC-8
        ("2099-07-15T09:00", "2099-07-15T16:00"),  # PDT, UTC-7
        ("2099-03-08T03:00", "2099-03-08T10:00"),  # the first minute after the clocks go forward
        ("2099-11-01T02:00", "2099-11-01T10:00"),  # the first minute after they go back
    ],
)
def test_a_wall_clock_time_is_read_in_the_zone(naive, utc):
    moment = wall_clock(datetime.fromisoformat(naive), WEST)
    assert moment.astimezone(UTC).replace(tzinfo=None) == datetime.fromisoformat(utc)


def test_a_time_the_clocks_skip_is_refused_with_the_reason():
    with pytest.raises(WallClockError, match="does not exist in America/Vancouver"):
        wall_clock(datetime(2099, 3, 8, 2, 30), WEST)


def test_a_time_the_clocks_repeat_is_refused_with_both_offsets_to_choose_from():
    with pytest.raises(WallClockError) as refused:
        wall_clock(datetime(2099, 11, 1, 1, 30), WEST)
    assert "happens twice" in str(refused.value)
    assert "2099-11-01T01:30:00-07:00" in str(refused.value)
    assert "2099-11-01T01:30:00-08:00" in str(refused.value)


def test_the_same_instant_either_side_of_dst_names_the_standard_or_daylight_zone():
    winter = datetime(2099, 1, 15, 17, 0, tzinfo=UTC)
    summer = datetime(2099, 7, 15, 16, 0, tzinfo=UTC)
    # CLDR puts a narrow no-break space (U+202F) between the time and "a.m."
    assert local_time(winter, WEST, "en") == "Jan 15, 2099, 9:00\u202fa.m. Pacific Standard Time"
    assert local_time(summer, WEST, "en") == "Jul 15, 2099, 9:00\u202fa.m. Pacific Daylight Time"
    assert local_time(winter, WEST, "fr") == "15 janv. 2099, 09 h 00 heure normale du Pacifique"
    assert local_time(summer, WEST, "fr") == "15 juill. 2099, 09 h 00 heure avancée du Pacifique"
    assert local_time(winter.replace(tzinfo=None), WEST, "en") == local_time(winter, WEST, "en")


@pytest.mark.parametrize(
    ("zone", "en", "fr"),
    [
        ("America/Toronto", "Eastern Time", "heure de l’Est"),
        ("America/Vancouver", "Pacific Time", "heure du Pacifique"),
        ("America/Regina", "Central Standard Time", "heure normale du Centre"),
        ("UTC", "Coordinated Universal Time", "temps universel coordonné"),
    ],
)
def test_a_zone_is_named_generically_or_by_its_only_name(zone, en, fr):
    assert (zone_name(zone, "en"), zone_name(zone, "fr")) == (en, fr)
