"""Times as people read them: in the intake's zone, in the page's language, the zone named.

No Flask here: pages (the `local_time` filter, web/i18n.py) and emails (web/letters.py) share it.
Stored times and the JSON API stay in UTC with offsets; only what a person reads is local.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime

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
