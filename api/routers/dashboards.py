"""Dashboards of a commune or a pole: JSON figures, a PNG chart, a PDF.

The ``.png`` and ``.pdf`` routes are declared before the JSON one: ``{code}`` matches any segment,
so ``/dashboards/commune/SN0104-bargny.png`` would otherwise be read as a code ending in ``.png``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api.deps import SessionDep
from api.limits import AnalysisRateLimited
from api.problems import language
from api.responses import binary, described
from api.routers.exports import RateLimited
from api.schemas.figures import Dashboard, DashboardOut
from sifc import dashboard_charts, dashboards

router = APIRouter(tags=["Tableaux de bord"])

Level = Annotated[str, Path(max_length=20, description="`commune` ou `pole` (un autre niveau répond 404).",
                            examples=["commune"])]
Code = Annotated[str, Path(max_length=100, description="Code de la commune (`SN0104-bargny`) ou du pôle (`DKR`).",
                           examples=["SN0104-bargny"])]
PNG_RESPONSE = binary({"image/png": "Image PNG"})
PDF_RESPONSE = binary({"application/pdf": "PDF (A4)"})


@router.get("/dashboards/{level}/{code}.png", dependencies=[RateLimited], response_class=Response,
            responses=PNG_RESPONSE,
            summary="Tableau de bord d'une commune ou d'un pôle, en image PNG")
def dashboard_png(request: Request, session: SessionDep, level: Level, code: Code) -> Response:
    """Les mêmes indicateurs que `/dashboards/{level}/{code}` en graphiques ; libellés en français,
    en anglais avec `Accept-Language: en`."""
    lang = language(request)
    figures = dashboards.get(session, level=level, code=code)
    return Response(dashboard_charts.png(figures, lang), media_type="image/png",
                    headers={"Content-Language": lang, "Cache-Control": "no-cache"})


@router.get("/dashboards/{level}/{code}.pdf", dependencies=[RateLimited], response_class=Response,
            responses=PDF_RESPONSE,
            summary="Tableau de bord d'une commune ou d'un pôle, en PDF")
def dashboard_pdf(request: Request, session: SessionDep, level: Level, code: Code) -> Response:
    """Titre, date, indicateurs en tableaux, puis les graphiques (A4, deux pages en général)."""
    lang = language(request)
    figures = dashboards.get(session, level=level, code=code)
    day = figures["generated_at"][:10]
    # ``code`` names an existing commune or pole here: letters, digits and hyphens only.
    name = f"{'tableau_de_bord' if lang == 'fr' else 'dashboard'}_{code}_{day}.pdf"
    return Response(dashboard_charts.pdf(figures, lang), media_type="application/pdf",
                    headers={"Content-Language": lang, "Content-Disposition": f'inline; filename="{name}"'})


@router.get("/dashboards/{level}/{code}", dependencies=[AnalysisRateLimited], responses=described(DashboardOut),
            summary="Tableau de bord d'une commune ou d'un pôle (JSON ; .png et .pdf : le même en image, en PDF)")
def dashboard(session: SessionDep, level: Level, code: Code) -> Dashboard:
    """Parcelles par usage et par régime foncier (nombre, surface), couverture NICAD (part et
    nombre par `nicad_status`), procédures par état (leur dernière étape), imports par mois
    (`parcel_versions` : versions écrites dans l'unité ; `accepted` : le total du lot), chevauchements
    entre parcelles en vigueur (comme `/communes/{code}/overlaps`) ; pour un pôle, une ligne par
    commune qui a des parcelles. Données publiques agrégées, sans donnée personnelle."""
    return dashboards.get(session, level=level, code=code)
