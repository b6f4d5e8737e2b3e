"""Country and currency names as payment exports write them, mapped to ISO codes.

A small table, not a gazetteer: ISO 3166 alpha-2, alpha-3 and English names of the countries
the default rules name, plus common ones (and the short forms SAML-D uses: UK, USA, UAE). A
name not in the table is kept as written and counted in ``screening.json``.
"""

from __future__ import annotations

__all__ = ["COUNTRY_KEYS", "CURRENCY_NAMES"]

# alpha-2: (alpha-3, English names...)
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "AE": ("ARE", "United Arab Emirates", "UAE"),
    "AL": ("ALB", "Albania"),
    "AT": ("AUT", "Austria"),
    "AU": ("AUS", "Australia"),
    "BE": ("BEL", "Belgium"),
    "BR": ("BRA", "Brazil"),
    "CA": ("CAN", "Canada"),
    "CH": ("CHE", "Switzerland"),
    "CN": ("CHN", "China"),
    "CO": ("COL", "Colombia"),
    "DE": ("DEU", "Germany"),
    "DK": ("DNK", "Denmark"),
    "DO": ("DOM", "Dominican Republic"),
    "ES": ("ESP", "Spain"),
    "FI": ("FIN", "Finland"),
    "FR": ("FRA", "France"),
    "GB": ("GBR", "United Kingdom", "UK", "Great Britain", "England"),
    "GH": ("GHA", "Ghana"),
    "ID": ("IDN", "Indonesia"),
    "IE": ("IRL", "Ireland"),
    "IN": ("IND", "India"),
    "IT": ("ITA", "Italy"),
    "JM": ("JAM", "Jamaica"),
    "JP": ("JPN", "Japan"),
    "KE": ("KEN", "Kenya"),
    "KH": ("KHM", "Cambodia"),
    "MA": ("MAR", "Morocco"),
    "MX": ("MEX", "Mexico"),
    "NG": ("NGA", "Nigeria"),
    "NL": ("NLD", "Netherlands", "The Netherlands"),
    "NO": ("NOR", "Norway"),
    "NZ": ("NZL", "New Zealand"),
    "PH": ("PHL", "Philippines", "The Philippines"),
    "PK": ("PAK", "Pakistan"),
    "PL": ("POL", "Poland"),
    "PT": ("PRT", "Portugal"),
    "RO": ("ROU", "Romania"),
    "RU": ("RUS", "Russia", "Russian Federation"),
    "SE": ("SWE", "Sweden"),
    "SG": ("SGP", "Singapore"),
    "TH": ("THA", "Thailand"),
    "TR": ("TUR", "Turkey", "Turkiye"),
    "UA": ("UKR", "Ukraine"),
    "US": ("USA", "United States", "United States of America", "US"),
    "VN": ("VNM", "Vietnam", "Viet Nam"),
}

# Upper-cased key -> alpha-2 code.
COUNTRY_KEYS: dict[str, str] = {
    key.upper(): code for code, names in _COUNTRIES.items() for key in (code, *names)
}

# Currency names as SAML-D and IBM AML-Data write them -> ISO 4217 (upper-cased keys).
CURRENCY_NAMES: dict[str, str] = {
    "UK POUNDS": "GBP",
    "UK POUND": "GBP",
    "EURO": "EUR",
    "US DOLLAR": "USD",
    "DIRHAM": "AED",
    "MOROCCAN DIRHAM": "MAD",
    "INDIAN RUPEE": "INR",
    "RUPEE": "INR",
    "PAKISTANI RUPEE": "PKR",
    "YEN": "JPY",
    "YUAN": "CNY",
    "NAIRA": "NGN",
    "SWISS FRANC": "CHF",
    "MEXICAN PESO": "MXN",
    "ALBANIAN LEK": "ALL",
    "TURKISH LIRA": "TRY",
    "RUBLE": "RUB",
    "CANADIAN DOLLAR": "CAD",
    "AUSTRALIAN DOLLAR": "AUD",
    "BRAZIL REAL": "BRL",
    "SHEKEL": "ILS",
    "SAUDI RIYAL": "SAR",
    "BITCOIN": "XBT",
    "PHILIPPINE PESO": "PHP",
}
