"""Liveness and versions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api.deps import ReaderDep, SessionDep, SettingsDep
from sifc import __version__
from sifc.db import Statement
from sifc.federation import directory

router = APIRouter(tags=["Service"])

# How far the streaming replica's data is behind the primary: 0 when it has replayed all it received (an idle
# primary sends nothing, and the last replayed transaction's age would grow for no lag), else the age of the
# last transaction it replayed; NULL on a server that is not in recovery (not a replica) or has replayed none.
REPLAY_LAG = Statement(
    "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END", {})


class HealthOut(BaseModel):
    status: str = Field(description="`ok`, or `degraded` when the read replica does not answer")
    version: str
    database: str
    postgis: str
    reference_loaded: bool
    federation: dict[str, Any] = Field(default_factory=lambda: {"role": "single"}, description=(
        "The node's place in the federation (ADR 0004): `role` (single, pole, national); off a single node its "
        "`node_id`; at the national node `personal` (its personal-data policy: `pole` when identities stay at the "
        "poles, `national`) and `poles`, per pole node id: `data_age_s` (seconds since the latest heartbeat "
        "of the pole that arrived, null before the first), `lag_bytes` (received from the pole, not yet applied) "
        "and `status` of the subscription (streaming, stopped, disabled, missing)"))
    read_replica: bool = Field(default=False, description=(
        "Whether the read-only routes that tolerate lag (tiles, OGC items, parcels at a point) read from a "
        "streaming replica (`SIFC_READ_DATABASE_URL`) rather than the primary"))
    read_replay_lag_s: float | None = Field(default=None, description=(
        "The replica's replay lag in seconds (0: it replayed everything it received); null without a replica "
        "or when it does not answer"))


@dataclass(frozen=True)
class ReadTarget:
    """Where the read pool reads: the primary, or a replica and how far behind it is."""

    replica: bool
    lag_s: float | None = None
    available: bool = True


async def read_target(reader: ReaderDep, settings: SettingsDep) -> ReadTarget:
    """The replica's state through the read pool itself (no query when the pool reads the primary)."""
    if not settings.read_replica:
        return ReadTarget(replica=False)
    try:
        _in_recovery, lag = await reader.row(REPLAY_LAG)
    except OperationalError:
        return ReadTarget(replica=True, available=False)
    return ReadTarget(replica=True, lag_s=None if lag is None else round(float(lag), 3))


@router.get("/health", response_model=HealthOut, summary="État du service et de la base")
def health(session: SessionDep, read: Annotated[ReadTarget, Depends(read_target)]) -> HealthOut:
    row = session.execute(text(
        "SELECT current_setting('server_version') AS database, postgis_lib_version() AS postgis, "
        "EXISTS (SELECT 1 FROM commune) AS reference_loaded")).one()
    federation = directory.health(session)
    return HealthOut(federation=federation, status="ok" if read.available else "degraded", version=__version__,
                     database=f"PostgreSQL {row.database}", postgis=f"PostGIS {row.postgis}",
                     reference_loaded=row.reference_loaded, read_replica=read.replica, read_replay_lag_s=read.lag_s)
