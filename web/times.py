"""Times as people read them: in the intake's zone, in the page's language, the zone named.

No Flask here: pages (the `local_time` filter, web/i18n.py) and emails (web/letters.py) share it.
Stored times and the JSON API stay in UTC with offsets; only what a person reads is local.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime, get_timezone_name

# Babel's locale for each language: Canadian conventions and zone names ("heure normale de l'Est").
LOCALES = {"en": "en_CA", "fr": "fr_CA"}


@cache
def _pattern(language: str, width: str) -> str:
    """The locale's date of `width`, its short time, and the zone's long name, which is the
    standard or the daylight one for the moment (CLDR's `zzzz`; abbreviations like EST exist
    in few locales and zones)."""
    locale = Locale.parse(LOCALES.get(language, LOCALES["en"]))
    time = f"{locale.time_formats['short'].pattern} zzzz"
    joined: str = locale.datetime_formats[width]
    return joined.replace("{1}", locale.date_formats[width].pattern).replace("{0}", time)


def local_time(
    moment: datetime,
    zone: str,
    language: str,
    width: Literal["short", "medium", "long"] = "medium",
) -> str:
    """`moment` (aware, or naive UTC) as a wall-clock time in `zone`, e.g. "Mar 5, 2025, 10:00 a.m.
    Eastern Standard Time" or "5 mars 2025, 10 h 00 heure normale de l'Est"."""
    return format_datetime(
        moment,
        _pattern(language, width),
        tzinfo=ZoneInfo(zone),
        locale=LOCALES.get(language, LOCALES["en"]),
    )


def zone_name(zone: str, language: str) -> str:
    """The zone's generic name, e.g. "Eastern Time" or "heure de l'Est", for a caption that
    covers times on both sides of a daylight-saving change; a zone without daylight saving (UTC,
    Asia/Manila) has only its standard name, e.g. "Coordinated Universal Time"."""
    tz, locale = ZoneInfo(zone), LOCALES.get(language, LOCALES["en"])
    if not any(datetime(2025, month, 1, tzinfo=tz).dst() for month in (1, 7)):
        return get_timezone_name(datetime(2025, 1, 1, tzinfo=tz), "long", locale=locale)
    return get_timezone_name(tz, "long", locale=locale)


class WallClockError(ValueError):
    """A wall-clock time that names no single moment in its zone."""


def wall_clock(naive: datetime, zone: str) -> datetime:
    """`naive` read as a wall-clock time in `zone`. A time skipped by a daylight-saving change
    (02:30 on the March morning the clocks go forward) or repeated by one (01:30 on the November
    morning they go back) is refused: the operator adds an offset to say which moment is meant."""
    tz = ZoneInfo(zone)
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise WallClockError(f"{naive:%Y-%m-%d %H:%M} does not exist in {zone}: the clocks skip it")
    if first.utcoffset() != second.utcoffset():
        raise WallClockError(
            f"{naive:%Y-%m-%d %H:%M} happens twice in {zone}: add an offset, e.g."
            f" {first.isoformat()} or {second.isoformat()}"
        )
    return first
