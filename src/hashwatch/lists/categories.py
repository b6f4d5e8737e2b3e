"""Category schemes: the raw code a list carries, and what it means in each scheme.

hashwatch stores the raw code and the scheme exactly as the source wrote them and maps them to
a label only for display; a list may carry its own mapping (``category_map``) for custom
schemes. Labels are neutral and descriptive.
"""

from __future__ import annotations

from hashwatch.errors import ConfigError
from hashwatch.lists.model import CategoryScheme

__all__ = ["DEFAULT_CATEGORY_MAPS", "category_label", "check_category", "scheme_codes_help"]

DEFAULT_CATEGORY_MAPS: dict[CategoryScheme, dict[str, str]] = {
    # VICS / DHS scheme as used by Autopsy and Project VIC (US).
    CategoryScheme.US: {
        "0": "uncategorised",
        "1": "category 1: child abuse material (illegal)",
        "2": "category 2: child exploitive (not illegal / age difficult)",
        "3": "category 3: CGI / animation",
        "4": "category 4: comparison exemplar",
        "5": "category 5: non-pertinent",
    },
    # UK Child Abuse Image Database grades.
    CategoryScheme.UK: {
        "A": "category A",
        "B": "category B",
        "C": "category C",
        "NI": "non-indecent",
        "0": "uncategorised",
    },
    CategoryScheme.CUSTOM: {},
    CategoryScheme.NONE: {},
}


def category_label(
    scheme: str, code: str | None, custom: dict[str, str] | None = None
) -> str | None:
    """The display label of ``code`` in ``scheme`` (a list's own mapping wins)."""
    if code is None:
        return None
    if custom and code in custom:
        return custom[code]
    try:
        mapping = DEFAULT_CATEGORY_MAPS[CategoryScheme(scheme)]
    except ValueError:
        return None
    return mapping.get(code.upper() if scheme == CategoryScheme.UK else code)


def _codes(scheme: str, custom: dict[str, str] | None) -> dict[str, str]:
    """The codes a list of ``scheme`` accepts (its own mapping wins; empty: any code)."""
    if custom:
        return dict(custom)
    try:
        return DEFAULT_CATEGORY_MAPS[CategoryScheme(scheme)]
    except ValueError:
        return {}


def check_category(
    scheme: str, code: str | None, custom: dict[str, str] | None = None
) -> str | None:
    """``code`` as the list stores it, or :class:`ConfigError` naming the valid codes.

    A list of the US or UK scheme, or one with its own ``category_map``, accepts only its
    codes (UK codes in any case, stored in upper case); a list without a scheme (NONE) or a
    CUSTOM list without a mapping stores any code as written.
    """
    if code is None or not code.strip():
        return None
    code = code.strip()
    codes = _codes(scheme, custom)
    if not codes:
        return code
    if code in codes:
        return code
    if scheme == CategoryScheme.UK and code.upper() in codes:
        return code.upper()
    valid = ", ".join(codes)
    raise ConfigError(f"category {code!r} is not a code of this list's scheme {scheme}: {valid}")


def scheme_codes_help() -> str:
    """The schemes and their codes in one line, for ``--help`` texts."""
    parts = []
    for scheme, codes in DEFAULT_CATEGORY_MAPS.items():
        if codes:
            parts.append(f"{scheme.value}: {', '.join(codes)}")
    return "; ".join(parts) + "; NONE/CUSTOM: any code, or the list's own category map"
