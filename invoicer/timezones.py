"""The customer's time zone, from the service address (country, region), for quiet hours.

No coordinates come with a job, so a point-in-polygon library (timezonefinder) cannot be used. Instead:
1. the US, Canada and Australia, where one country spans several zones and the region (state,
   province) decides, have a region table below (a state split between zones takes the zone most
   of its people live in: Florida -> New York, Texas -> Chicago, Indiana -> Indianapolis, ...);
2. every other country takes its zone from the IANA database's own country table (`zone.tab`, from
   the `tzdata` package, or the system's copy): exact for the countries with one zone; for the
   other multi-zone countries a default chosen by hand (its capital or most populous area) below;
3. else the tenant's `reminders.timezone`, else the zone of the tenant's locale territory, else UTC.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

US = {
    **dict.fromkeys(("CT", "DE", "DC", "FL", "GA", "ME", "MD", "MA", "NH", "NJ", "NY", "NC", "OH", "PA", "RI", "SC",
                     "VT", "VA", "WV"), "America/New_York"),
    "MI": "America/Detroit", "IN": "America/Indiana/Indianapolis", "KY": "America/New_York",
    **dict.fromkeys(("AL", "AR", "IL", "IA", "KS", "LA", "MN", "MS", "MO", "NE", "ND", "OK", "SD", "TN", "TX", "WI"),
                    "America/Chicago"),
    **dict.fromkeys(("CO", "MT", "NM", "UT", "WY", "ID"), "America/Denver"),
    "AZ": "America/Phoenix",
    **dict.fromkeys(("CA", "NV", "OR", "WA"), "America/Los_Angeles"),
    "AK": "America/Anchorage", "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico", "VI": "America/St_Thomas", "GU": "Pacific/Guam", "AS": "Pacific/Pago_Pago",
    "MP": "Pacific/Saipan",
}
CA = {
    "NL": "America/St_Johns", "NS": "America/Halifax", "NB": "America/Moncton", "PE": "America/Halifax",
    "QC": "America/Toronto", "ON": "America/Toronto", "MB": "America/Winnipeg", "SK": "America/Regina",
    "AB": "America/Edmonton", "BC": "America/Vancouver", "YT": "America/Whitehorse", "NT": "America/Yellowknife",
    "NU": "America/Iqaluit",
}
AU = {
    "NSW": "Australia/Sydney", "ACT": "Australia/Sydney", "VIC": "Australia/Melbourne", "QLD": "Australia/Brisbane",
    "SA": "Australia/Adelaide", "WA": "Australia/Perth", "TAS": "Australia/Hobart", "NT": "Australia/Darwin",
}
REGIONS = {"US": US, "CA": CA, "AU": AU}
# full names as well as codes, since a dispatch system may send either
_NAMES = {
    "US": {"alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
           "connecticut": "CT", "delaware": "DE", "district of columbia": "DC", "florida": "FL", "georgia": "GA",
           "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
           "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD", "massachusetts": "MA",
           "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
           "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM",
           "new york": "NY", "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
           "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC", "south dakota": "SD",
           "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA",
           "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR"},
    "CA": {"newfoundland and labrador": "NL", "newfoundland": "NL", "nova scotia": "NS", "new brunswick": "NB",
           "prince edward island": "PE", "quebec": "QC", "québec": "QC", "ontario": "ON", "manitoba": "MB",
           "saskatchewan": "SK", "alberta": "AB", "british columbia": "BC", "yukon": "YT",
           "northwest territories": "NT", "nunavut": "NU"},
    "AU": {"new south wales": "NSW", "australian capital territory": "ACT", "victoria": "VIC", "queensland": "QLD",
           "south australia": "SA", "western australia": "WA", "tasmania": "TAS", "northern territory": "NT"},
}
# countries with several zones and no region table: where most of their people are
COUNTRY = {
    "US": "America/New_York", "CA": "America/Toronto", "AU": "Australia/Sydney", "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City", "RU": "Europe/Moscow", "ID": "Asia/Jakarta", "AR": "America/Argentina/Buenos_Aires",
    "KZ": "Asia/Almaty", "CL": "America/Santiago", "ES": "Europe/Madrid", "PT": "Europe/Lisbon",
    "NZ": "Pacific/Auckland", "EC": "America/Guayaquil", "DE": "Europe/Berlin", "CN": "Asia/Shanghai",
    "UA": "Europe/Kyiv", "MN": "Asia/Ulaanbaatar", "CD": "Africa/Kinshasa", "MY": "Asia/Kuala_Lumpur",
    "FR": "Europe/Paris", "GB": "Europe/London", "NL": "Europe/Amsterdam", "DK": "Europe/Copenhagen",
    "PF": "Pacific/Tahiti", "KI": "Pacific/Tarawa", "FM": "Pacific/Pohnpei", "PG": "Pacific/Port_Moresby",
    "UZ": "Asia/Tashkent", "CY": "Asia/Nicosia", "PS": "Asia/Gaza", "GL": "America/Nuuk", "UM": "Pacific/Wake",
}


def iana_zone(name: str) -> str:
    """`name` when it is an IANA zone, else a ValueError saying so (for pydantic validators)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone such as America/Chicago") from None
    return name


def _zone_tab() -> str:
    try:
        return resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return Path("/usr/share/zoneinfo/zone.tab").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def country_zones() -> dict[str, str]:
    """Country code -> its one zone (the IANA table), or the hand-chosen default where it has several."""
    found: dict[str, list[str]] = {}
    for line in _zone_tab().splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            found.setdefault(parts[0], []).append(parts[2])
    return {country: COUNTRY.get(country, zones[0]) for country, zones in found.items()}


def zone_name(country: str | None, region: str | None = None) -> str | None:
    """The IANA zone of an address, or None when its country is unknown."""
    country = (country or "").strip().upper()
    table = REGIONS.get(country)
    if table and region:
        code = region.strip().upper().removeprefix(f"{country}-")
        code = _NAMES[country].get(region.strip().lower(), code)
        if code in table:
            return table[code]
    return country_zones().get(country)


def customer_zone(address: dict | None, fallback: str | None = None) -> ZoneInfo:
    address = address or {}
    name = zone_name(address.get("country"), address.get("region")) or fallback or "UTC"
    return ZoneInfo(name)


def locale_zone(locale: str) -> str | None:
    """The zone of a tenant's locale territory (`en_GB` -> Europe/London), when it names one."""
    _, _, territory = locale.replace("-", "_").partition("_")
    return country_zones().get(territory.upper()) if territory else None
