"""The printed public display (affichage public) of a campaign, and the close of a display as a job.

Per localité (each campaign parcel goes to its nearest current localité of the commune; without any,
one sheet for the whole campaign), a map of the parcels and a list: NICAD, section and number, area,
and the presumed holders' names **only** when the commune's ``display_shows_names`` setting, in force
on the print date, says the display names them (a choice of the commune's texts and practice, never of
code). Each print is an issued document of kind ``affichage_public``, sealed and verifiable like the
others; one that names holders is ``personal`` and is also a logged personal read (``access_audit``).
The public web (tiles, OGC, public GeoJSON) never shows presumed holders: only this print does.

Both builders run through the document jobs' registry (:mod:`sifc.documents.jobs`):
``campaign_display`` prints, ``display_close`` closes a period (registers the régularisation
procedures) in the job's transaction.
"""

from __future__ import annotations

import io
import uuid
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.commission import campaigns, display
from sifc.documents import jobs as document_jobs
from sifc.documents import layout, records
from sifc.documents.verification import Issue, Sealed
from sifc.errors import NotFound
from sifc.keyring import SigningKey

KIND = "affichage_public"


def _groups(session: Session, campaign_id: uuid.UUID) -> list[dict[str, Any]]:
    """The campaign's parcels by nearest localité (name, id), each with its geometry (WKB, metres)."""
    rows = session.execute(text("""
        SELECT cp.parcel_id, cp.presumed_holders, v.nicad, v.section, v.local_number, v.area_m2,
               ST_AsBinary(v.geom) AS wkb, near.localite_id, near.name AS localite
        FROM campaign_parcel cp
        JOIN parcel_version v ON v.parcel_id = cp.parcel_id AND v.valid_to IS NULL
        LEFT JOIN LATERAL (
            SELECT l.localite_id, l.name FROM localite_version l
            WHERE l.valid_to IS NULL AND l.commune_code = v.commune_code
            ORDER BY l.geom <-> ST_PointOnSurface(v.geom) LIMIT 1) near ON true
        WHERE cp.campaign_id = :id
        ORDER BY near.name NULLS LAST, v.section, v.local_number, v.nicad, cp.parcel_id"""),
        {"id": campaign_id}).mappings().all()
    groups: dict[Any, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(row["localite_id"], {"localite_id": row["localite_id"], "name": row["localite"],
                                                       "parcels": []})
        group["parcels"].append(dict(row))
    return list(groups.values())


def _names(session: Session, parcels: list[dict[str, Any]]) -> dict[str, str]:
    ids = [h["party_id"] for p in parcels for h in p["presumed_holders"]]
    return {str(p): n for p, n in session.execute(text("""
        SELECT party_id, concat_ws(' ', given_names, name) FROM party_version
        WHERE valid_to IS NULL AND party_id = ANY(CAST(:ids AS uuid[]))"""), {"ids": ids}).all()}


def _map(parcels: list[dict[str, Any]], title: str) -> bytes:
    import shapely
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.2, 5.0), dpi=150)
    ax = figure.subplots()
    for number, parcel in enumerate(parcels, start=1):
        geometry = shapely.from_wkb(bytes(parcel["wkb"]))
        for polygon in getattr(geometry, "geoms", [geometry]):
            xs, ys = polygon.exterior.xy
            ax.fill(xs, ys, facecolor="#f6c85f", edgecolor="#b22222", linewidth=0.8)
        point = geometry.representative_point()
        ax.text(point.x, point.y, str(number), ha="center", va="center", fontsize=6)
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _facts(campaign: dict[str, Any], group: dict[str, Any], names: dict[str, str] | None, on: date,
           lang: str) -> dict[str, Any]:
    from sifc.documents import verification

    return {**verification.new_header(KIND, lang),
            "campaign": {"id": campaign["id"], "name": campaign["name"]},
            "commune": {"code": campaign["commune_code"]},
            "localite": {"id": str(group["localite_id"]) if group["localite_id"] else None, "name": group["name"]},
            "printed_on": on.isoformat(), "names_shown": names is not None,
            "parcels": [{"number": n, "id": str(p["parcel_id"]), "nicad": p["nicad"], "section": p["section"],
                         "local_number": p["local_number"], "area_m2": records.rounded(p["area_m2"]),
                         **({"holders": [names.get(h["party_id"]) for h in p["presumed_holders"]]}
                            if names is not None else {})}
                        for n, p in enumerate(group["parcels"], start=1)]}


def _story(facts: dict[str, Any], png: bytes, frame: layout.Frame) -> list[Any]:
    from reportlab.platypus import Image, Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    header = ["#", layout.label("nicad", lang), layout.label("section", lang), layout.label("local_number", lang),
              layout.label("area", lang)]
    if facts["names_shown"]:
        header.append(layout.label("presumed_holders", lang))
    rows = [header]
    for p in facts["parcels"]:
        row = [str(p["number"]), p["nicad"] or "—", p["section"] or "—", p["local_number"] or "—",
               layout.area(p["area_m2"], lang)]
        if facts["names_shown"]:
            row.append(Paragraph(layout.escape(", ".join(h or "—" for h in p["holders"])), style["small"]))
        rows.append(row)
    where = facts["localite"]["name"] or facts["campaign"]["name"]
    return [Paragraph(layout.escape(layout.label("affichage", lang)), style["title"]),
            Paragraph(layout.escape(f"{facts['campaign']['name']} — {where} — {facts['printed_on']}"), style["small"]),
            Spacer(1, 6), Paragraph(layout.escape(layout.label("affichage_text", lang)), style["body"]),
            Image(io.BytesIO(png), width=480, height=333), Spacer(1, 6), layout.table(rows),
            *layout.code_block(frame)]


def build(session: Session, *, campaign_id: str, reader: Principal, on: date, lang: str, seal_key: SigningKey,
          verify_url: str, issued_by: str) -> list[tuple[str, bytes]]:
    """One sealed display sheet per localité of the campaign (file name, PDF), each in the register.

    Names printed only when ``display_shows_names`` is true for the commune on ``on``; such a print
    is logged as a personal read of the campaign by ``reader``.
    """
    from sifc.rules import service as rules

    campaign = campaigns.get(session, campaign_id=campaign_id, reader=reader)
    shows = bool(rules.maybe_in_force(session, commune_code=campaign["commune_code"], key="display_shows_names",
                                      on=on))
    printed = []
    for index, group in enumerate(_groups(session, uuid.UUID(campaign["id"])), start=1):
        names = _names(session, group["parcels"]) if shows else None
        facts = _facts(campaign, group, names, on, lang)
        title = f"{layout.label('affichage', lang)} — {group['name'] or campaign['name']}"
        png = _map(group["parcels"], group["name"] or campaign["name"])

        def pdf(sealed: Sealed, facts: dict[str, Any] = facts, png: bytes = png, title: str = title) -> bytes:
            frame = layout.Frame(title, sealed.code, verify_url, lang, title)
            return layout.render(_story(facts, png, frame), frame)

        summary = {k: v for k, v in facts.items() if k not in ("lang", "format")}
        summary["parcels"] = [{k: v for k, v in p.items() if k != "holders"} for p in facts["parcels"]]
        issued = Issue(KIND, "campaign", campaign["id"], campaign["commune_code"], summary, names is not None,
                       issued_by)
        printed.append((f"{index:03d}-affichage.pdf",
                        layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf,
                                     title=title)))
        if names is not None:
            audit.record(session, reader, service=f"{__name__}.build", subject_kind="campaign",
                         subject_id=campaign["id"], commune_code=campaign["commune_code"],
                         purpose="affichage public")
    if not printed:
        raise NotFound("campaign.nothing_to_print", id=campaign["id"])
    return printed


# --- the document jobs' builders ---------------------------------------------------------------------

def _build_display(session: Session, params: dict[str, Any], progress: document_jobs.Progress
                   ) -> document_jobs.BuiltBatch:
    progress(0, 1)
    items = build(session, campaign_id=str(params["campaign_id"]), reader=progress.by, on=date.today(),
                  lang=progress.lang, seal_key=progress.seal_key, verify_url=progress.verify_url,
                  issued_by=progress.issued_by)
    progress(1, 1)
    return document_jobs.BuiltBatch(items=items, report={"documents": len(items)})


def _check_display(session: Session, params: dict[str, Any], commune_code: str) -> None:
    if campaigns.commune_of(session, campaign_id=str(params.get("campaign_id"))) != commune_code:
        raise NotFound("campaign.not_found", id=str(params.get("campaign_id"))[:64])


def _build_close(session: Session, params: dict[str, Any], progress: document_jobs.Progress
                 ) -> document_jobs.BuiltBatch:
    progress(0, 1)
    found = display.close_period(session, campaign_id=str(params["campaign_id"]), period_id=str(params["period_id"]),
                                 closed_on=date.fromisoformat(str(params["closed_on"])), by=progress.by,
                                 author=progress.by.name)
    progress(1, 1)
    return document_jobs.BuiltBatch(report={"registered": len(found["registered"]), "waiting": found["waiting"]},
                                    combined=False)


document_jobs.register("campaign_display", _build_display, check=_check_display)
document_jobs.register("display_close", _build_close, check=_check_display)
