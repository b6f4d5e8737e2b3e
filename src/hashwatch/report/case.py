"""Who examined what, for which case: the details a case's outputs carry about the case itself.

The examiner gives the case number, the agency and their own name (``hashwatch scan
--case-number … --agency … --examiner …``); hashwatch adds who ran the command on which host,
and the command line. They are shown in the report's header, written to the VICS case
(``CaseNumber``, ``ContactName``, ``ContactOrganization``), kept in the manifest under ``case``
and recorded in the audit log when the scan starts (and each time it is resumed).

The values are free text typed by a person and end up in HTML, JSON and a court bundle: they
are bounded in length and may not hold control characters.
"""

from __future__ import annotations

import getpass
import os
import socket
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hashwatch.errors import ConfigError

__all__ = ["MAX_FIELD_CHARS", "CaseDetails", "current_operator"]

MAX_FIELD_CHARS = 200
_GIVEN = ("case_number", "agency", "examiner")


def current_operator() -> str:
    """The login name of the person running hashwatch (``unknown`` when it cannot be told)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _checked(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    flag = "--" + name.replace("_", "-")
    if len(text) > MAX_FIELD_CHARS:
        raise ConfigError(f"{flag} is longer than {MAX_FIELD_CHARS} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ConfigError(f"{flag} holds a control character (line end, tab, ...)")
    return text


@dataclass(frozen=True)
class CaseDetails:
    """The case's own details. ``operator``, ``host`` and ``command`` default to this process."""

    case_number: str | None = None
    agency: str | None = None
    examiner: str | None = None
    operator: str = field(default_factory=current_operator)
    host: str = field(default_factory=socket.gethostname)
    command: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in _GIVEN:
            object.__setattr__(self, name, _checked(name, getattr(self, name)))

    @classmethod
    def given(
        cls,
        case_number: str | None = None,
        agency: str | None = None,
        examiner: str | None = None,
        command: Sequence[str] = (),
    ) -> CaseDetails:
        """Details typed by the examiner, with this process's operator, host and command."""
        return cls(case_number, agency, examiner, command=tuple(command))

    def given_json(self) -> dict[str, str | None]:
        """The three details the examiner gives (what a resumed scan must keep)."""
        return {name: getattr(self, name) for name in _GIVEN}

    def as_json(self) -> dict[str, Any]:
        return {
            **self.given_json(),
            "operator": self.operator,
            "host": self.host,
            "command": list(self.command),
        }

    def resumed_from(self, recorded: Mapping[str, Any] | None) -> CaseDetails:
        """These details for a resumed scan: what was recorded, unless given anew the same.

        A detail left out when resuming keeps its recorded value; one given differently is
        refused: a case's number, agency and examiner do not change half way through a scan.
        """
        if not recorded:
            return self
        merged: dict[str, str | None] = {}
        for name in _GIVEN:
            before, now = recorded.get(name), getattr(self, name)
            if now is not None and before is not None and now != before:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{flag} differs from the scan being resumed (recorded: {before!r})"
                )
            merged[name] = now if now is not None else before
        return CaseDetails(
            merged["case_number"],
            merged["agency"],
            merged["examiner"],
            operator=self.operator,
            host=self.host,
            command=self.command,
        )
