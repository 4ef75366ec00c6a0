"""Which star a light curve is of, and which part of its observation: ``star_id`` (a catalogue
designation such as ``TIC 38846515``, ``KIC 9002278``, ``EPIC 206154641``), ``mission`` and
``segment`` (``sector 1``, ``quarter 13``, ``campaign 4``), so that products are grouped per star
and a star's segments can be told apart.

Read, in order of precedence, from: an explicit ``star_id`` (upload or job metadata); the FITS
headers the mission reader keeps (TICID, KEPLERID, TARGETID, OBJECT; TELESCOP, MISSION; SECTOR,
QUARTER, CAMPAIGN); the file name, as the missions name their files (``tess...-<16-digit TIC>-``,
``kplr<9-digit KIC>``, ``ktwo<9-digit EPIC>``, ``hlsp_..._<11-digit TIC>-s01``) or as people do
(``tls_EPIC206154641.csv``, ``TIC_25155310.txt``). A light curve none of these name has no
``star_id``: it is grouped under its own file.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

_CATALOGUES = ("TIC", "KIC", "EPIC")
#: (file-name pattern with groups ``id`` and optionally ``seg``, catalogue, mission, segment kind)
_BY_NAME = (
    (re.compile(r"^tess\d{13}-s(?P<seg>\d{4})-(?P<id>\d{16})-"), "TIC", "TESS", "sector"),
    (re.compile(r"^kplr(?P<id>\d{9})-"), "KIC", "Kepler", None),
    (re.compile(r"^ktwo(?P<id>\d{9})-c(?P<seg>\d{2})"), "EPIC", "K2", "campaign"),
    (re.compile(r"^hlsp_.*?_(?P<id>\d{11})-s(?P<seg>\d{2})"), "TIC", "TESS", "sector"),
)
_DESIGNATION = re.compile(r"(?i)(?<![A-Za-z])(TIC|KIC|EPIC)[ _-]?0*(\d{4,})")


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def star_identity(meta: Mapping[str, Any], file_name: str = "") -> dict[str, Any]:
    """``star_id``, ``mission`` and ``segment`` of a light curve (only those that are known)."""
    out: dict[str, Any] = {}
    telescope = str(meta.get("telescop") or "").upper()
    mission = str(meta.get("mission") or "").upper()
    k2 = mission == "K2" or meta.get("campaign") is not None
    if "TESS" in (telescope, mission):
        out["mission"] = "TESS"
    elif k2:
        out["mission"] = "K2"
    elif "KEPLER" in (telescope, mission):
        out["mission"] = "Kepler"
    explicit = str(meta.get("star_id") or "").strip()
    if explicit:
        out["star_id"] = explicit
    elif _int(meta.get("ticid")):
        out["star_id"] = f"TIC {_int(meta['ticid'])}"
    elif _int(meta.get("keplerid")):
        out["star_id"] = f"{'EPIC' if k2 else 'KIC'} {_int(meta['keplerid'])}"
    elif _int(meta.get("targetid")) and out.get("mission"):
        out["star_id"] = f"{ {'TESS': 'TIC', 'K2': 'EPIC'}.get(out['mission'], 'KIC')} {_int(meta['targetid'])}"
    else:
        match = _DESIGNATION.search(str(meta.get("object") or "")) or _DESIGNATION.search(file_name)
        if match:
            out["star_id"] = f"{match[1].upper()} {int(match[2])}"
    for pattern, catalogue, name_mission, part in _BY_NAME:
        match = pattern.match(file_name)
        if match:
            out.setdefault("star_id", f"{catalogue} {int(match['id'])}")
            out.setdefault("mission", name_mission)
            if part:
                out["segment"] = f"{part} {int(match['seg'])}"
            break
    for key in ("sector", "quarter", "campaign"):
        if _int(meta.get(key)) is not None or meta.get(key) == 0:
            out["segment"] = f"{key} {int(meta[key])}"
            break
    return out
