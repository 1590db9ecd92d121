"""The registre foncier communal: a commune's current parcels and the rights in force on them.

Everyone gets it without holders (the same public facts as ``/communes/{code}/parcels`` and
``/parcels/{id}/rights``); a signed-in role whose scope covers the commune gets the holders and
their shares, and :func:`gather` logs the read (see ``data/policy.yaml``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.documents import layout, records, verification
from sifc.documents.layout import label
from sifc.documents.verification import Issue, Sealed
from sifc.errors import NotFound
from sifc.keyring import SigningKey
from sifc.personal import may_reveal

CSV_HEADER = {
    "fr": ["nicad", "section", "numero", "superficie_m2", "usage", "regime_foncier", "droit", "debut", "fin",
           "titulaires"],
    "en": ["nicad", "section", "number", "area_m2", "land_use", "tenure_regime", "right", "start", "end", "holders"],
}
FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Register:
    """A commune's register as printed: its parcels, each with its rights (and holders when shown)."""

    commune_code: str
    commune_name: str
    personal: bool
    parcels: list[dict[str, Any]]

    @property
    def safe_code(self) -> str:
        """The commune's code for a file name."""
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.commune_code)


def _rights(session: Session, commune_code: str, personal: bool) -> dict[str, list[dict[str, Any]]]:
    rows = session.execute(text("""
        SELECT r.parcel_id::text AS parcel_id, r.rrr_id, r.version, r.type, r.start_date, r.end_date
        FROM rrr_version r JOIN parcel p ON p.parcel_id = r.parcel_id AND p.commune_code = :c
        WHERE r.valid_to IS NULL AND (r.end_date IS NULL OR r.end_date > current_date)
        ORDER BY r.start_date, r.rrr_id"""), {"c": commune_code}).mappings().all()
    holders = _holders(session, commune_code) if personal else {}
    found: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        right = {"type": r["type"], "start_date": r["start_date"].isoformat(),
                 "end_date": r["end_date"].isoformat() if r["end_date"] else None}
        if personal:
            right["holders"] = holders.get((r["rrr_id"], r["version"]), [])
        found.setdefault(r["parcel_id"], []).append(right)
    return found


def _holders(session: Session, commune_code: str) -> dict[tuple[Any, int], list[dict[str, Any]]]:
    rows = session.execute(text("""
        SELECT h.rrr_id, h.version, h.share_numerator, h.share_denominator, pv.name, pv.given_names
        FROM rrr_version r JOIN rrr_holder h ON h.rrr_id = r.rrr_id AND h.version = r.version
        LEFT JOIN party_version pv ON pv.party_id = h.party_id AND pv.valid_to IS NULL
        WHERE r.commune_code = :c AND r.valid_to IS NULL
        ORDER BY h.share_numerator::numeric / h.share_denominator DESC, h.party_id"""), {"c": commune_code}).mappings()
    found: dict[tuple[Any, int], list[dict[str, Any]]] = {}
    for h in rows:
        found.setdefault((h["rrr_id"], h["version"]), []).extend(records.holder_facts([{
            "name": h["name"], "given_names": h["given_names"],
            "share": f"{h['share_numerator']}/{h['share_denominator']}"}]))
    return found


def gather(session: Session, *, commune_code: str, reader: Principal) -> Register:
    """The register of a commune (404 for an unknown commune).

    Holders and shares only if ``reader`` may read personal data in the commune; then each parcel
    of the register is logged as read.
    """
    personal = may_reveal(reader, {commune_code})
    name = session.execute(text("SELECT name FROM commune WHERE code = :c"), {"c": commune_code}).scalar()
    if name is None:
        raise NotFound("territory.not_found", level="commune", code=commune_code[:100])
    rows = session.execute(text("""
        SELECT parcel_id::text AS id, nicad, section, local_number, area_m2, land_use, tenure_regime FROM parcel
        WHERE commune_code = :c ORDER BY section NULLS LAST, local_number NULLS LAST, nicad NULLS LAST, parcel_id"""),
        {"c": commune_code}).mappings().all()
    rights = _rights(session, commune_code, personal)
    parcels = [{**dict(r), "area_m2": records.rounded(r["area_m2"]), "rights": rights.get(r["id"], [])} for r in rows]
    if personal:
        audit.record_many(session, reader, service=f"{__name__}.gather", subject_kind="parcel",
                          subjects=[(p["id"], commune_code) for p in parcels])
    return Register(commune_code, name, personal, parcels)


def _holders_text(right: dict[str, Any]) -> str:
    return "; ".join(f"{h['name']} ({records.share_text(h['share'])})" for h in right.get("holders", []))


def _lines(register: Register) -> list[list[Any]]:
    """One line per parcel and right (a parcel without rights: one line)."""
    out = []
    for p in register.parcels:
        base = [p["nicad"], p["section"], p["local_number"], p["area_m2"], p["land_use"], p["tenure_regime"]]
        for right in p["rights"] or [None]:
            if right is None:
                out.append([*base, None, None, None, None])
            else:
                out.append([*base, right["type"], right["start_date"], right["end_date"],
                            _holders_text(right) if register.personal else None])
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    found = str(value)
    return "'" + found if found.startswith(FORMULA) else found  # no formula when a spreadsheet opens it


def csv_bytes(register: Register, *, lang: str) -> bytes:
    """The register as CSV (UTF-8 with a header row; holders' column empty unless shown)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER.get(lang, CSV_HEADER["fr"]))
    for line in _lines(register):
        writer.writerow([_cell(v) if not isinstance(v, float) else f"{v:.2f}" for v in line])
    return out.getvalue().encode("utf-8")


def _story(register: Register, facts: dict[str, Any], frame: layout.Frame) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    head = [label("nicad", lang), label("section", lang), label("local_number", lang), label("area", lang),
            label("land_use", lang), label("regime", lang), label("type", lang), label("start", lang),
            label("end", lang), label("holders", lang)]
    rows: list[list[Any]] = [head] + [
        [Paragraph(layout.escape(v), style["small"]) if i == 9 and v else
         (layout.area(v, lang) if i == 3 else ("" if v is None else str(v))) for i, v in enumerate(line)]
        for line in _lines(register)]
    story: list[Any] = [
        Paragraph(layout.escape(label("republic", lang, commune=register.commune_name)), style["small"]),
        Paragraph(label("registre", lang), style["title"]),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("parcels", lang, count=len(register.parcels))), style["small"]),
        Spacer(1, 6),
        layout.table(rows, [78, 48, 48, 70, 70, 70, 60, 55, 55, 208]),
    ]
    if not register.personal:
        story.append(Paragraph(label("holders_withheld", lang), style["small"]))
    return [*story, *layout.code_block(frame)]


def build(session: Session, register: Register, *, lang: str, seal_key: SigningKey, verify_url: str,
          issued_by: str) -> bytes:
    """The register's paginated PDF (landscape, header row on every page), sealed and kept."""
    facts = {**verification.new_header("registre_foncier", lang),
             "commune": {"code": register.commune_code, "name": register.commune_name},
             "holders_shown": register.personal, "parcels": register.parcels}
    title = f"{label('registre', lang)} — {register.commune_name}"

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, verify_url, lang, register.commune_name)
        return layout.render(_story(register, facts, frame), frame, landscape=True)

    summary = {"document": facts["document"], "number": facts["number"], "issued_at": facts["issued_at"],
               "commune_code": register.commune_code, "parcels": len(register.parcels)}
    issued = Issue("registre_foncier", "commune", register.commune_code, register.commune_code, summary,
                   register.personal, issued_by)
    return layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf, title=title)
