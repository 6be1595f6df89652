"""Country codes and their names in the applicant's language, from Babel's CLDR data."""

from __future__ import annotations

import unicodedata
from functools import cache

from babel import Locale

# CLDR territories that are not countries issuing passports or places people live.
_NOT_COUNTRIES = {"AC", "CP", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}


@cache
def country_names(language: str) -> tuple[tuple[str, str], ...]:
    """(code, name) pairs sorted by name in the given language."""
    territories = Locale.parse(language).territories
    pairs = [
        (code, name)
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return tuple(sorted(pairs, key=lambda pair: _collation_key(pair[1])))


def _collation_key(name: str) -> str:
    """Accents ignored, as a reader expects: Égypte sorts with the E's, not after Zambie."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


COUNTRY_CODES = frozenset(code for code, _ in country_names("en"))


def country_name(code: str, language: str) -> str:
    return dict(country_names(language)).get(code, code)
