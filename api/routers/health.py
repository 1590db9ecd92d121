"""Liveness and versions."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import SessionDep
from sifc import __version__

router = APIRouter(tags=["Service"])


class HealthOut(BaseModel):
    status: str
    version: str
    database: str
    postgis: str
    reference_loaded: bool


@router.get("/health", response_model=HealthOut, summary="État du service et de la base")
def health(session: SessionDep) -> HealthOut:
    row = session.execute(text(
        "SELECT current_setting('server_version') AS database, postgis_lib_version() AS postgis, "
        "EXISTS (SELECT 1 FROM commune) AS reference_loaded")).one()
    return HealthOut(status="ok", version=__version__, database=f"PostgreSQL {row.database}",
                     postgis=f"PostGIS {row.postgis}", reference_loaded=row.reference_loaded)
