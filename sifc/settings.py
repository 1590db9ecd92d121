"""Service settings, read from ``SIFC_*`` environment variables.

Nothing here connects to anything: the settings object is built on demand
(``get_settings``) and passed to the app factory and the CLI, so tests can
build their own.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from sifc.errors import ConfigurationError

MIN_SECRET_LENGTH = 32  # HS256 keys should carry at least 256 bits (RFC 7518 §3.2)
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def normalize_database_url(value: str) -> str:
    """Return a SQLAlchemy URL that uses the psycopg 3 driver.

    Users give libpq-style URLs (``postgresql://…``); SQLAlchemy would pick
    psycopg2 for those, which the project does not install.
    """
    url = make_url(value)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


class Settings(BaseSettings):
    """All runtime settings of the service and the CLI."""

    model_config = SettingsConfigDict(env_prefix="SIFC_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql+psycopg://sifc_app:sifc_app@127.0.0.1:5432/sifc"
    admin_database_url: str | None = Field(
        default=None,
        description="Superuser URL of the same database, for migrations and provisioning.",
    )
    read_database_url: str | None = Field(default=None, description=(
        "Optional: a streaming replica of the same database (or any read-only copy kept by physical "
        "replication), for the read-only routes that tolerate its lag: vector tiles, OGC items, the parcels at "
        "a point (the read pool). Every write, and every read that follows a write, stays on database_url. "
        "Unset: the read pool uses database_url too."))
    read_timeout_s: float = Field(default=30.0, gt=0, le=300, description=(
        "Seconds a read-pool question waits for a connection before answering 503 (the replica or the "
        "database unreachable)."))
    secret_key: SecretStr | None = Field(default=None, description=(
        "Optional: the seed of the access tokens' key, from the environment (production secrets), instead of "
        "the key file; at least 32 bytes and found in no file of the source, or the service does not start."))
    key_file: Path = Field(
        default_factory=lambda: Path.home() / ".local" / "share" / "sifc" / "keys" / "signing-keys.json",
        description=("The signing keys (tokens, document seals), created on first start, mode 0600; "
                     "`sifc keys rotate` adds keys to it. Keep it: retired seal keys verify old documents."))
    node_id: str | None = Field(default=None, description=(
        "This node's id in a federation (the one `sifc node init --node-id` gives it, e.g. `dakar`): lower-case "
        "letters, digits and dashes, at most 41 characters. The id of each new seal key starts with it "
        "(`dakar-seal-20261205-9f3a61c2`), so a document names the node that sealed it wherever it is verified. "
        "Unset: seal key ids without a node (a single node)."))
    access_token_minutes: int = Field(default=15, ge=1, le=60, description="Lifetime of a JWT access token.")
    refresh_token_days: int = Field(default=14, ge=1, description="Lifetime of a refresh token (each use rotates it).")
    login_max_failures: int = Field(default=5, ge=1, description="Failed sign-ins before an account is locked.")
    login_lockout_minutes: int = Field(default=15, ge=1, description="How long a locked account stays locked.")
    login_rate_per_ip: int = Field(default=30, ge=1, description="Sign-in attempts per minute from one client address.")
    export_rate_per_minute: int = Field(default=120, ge=1, description=(
        "Exports per minute per client (its key or account, else its address), as a burst refilled evenly; "
        "beyond: 429 and Retry-After."))
    import_rate_per_minute: int = Field(default=30, ge=1, description=(
        "Import uploads per minute per client, as a burst refilled evenly; beyond: 429 and Retry-After."))
    tracking_wrong_codes_per_minute: int = Field(default=10, ge=1, description=(
        "Wrong tracking codes (GET /suivi/{file}/{code}) per minute from one client address, as a burst refilled "
        "evenly; beyond: 429 and Retry-After (ADR 0005 §8: at least 64 random bits and this limit make guessing "
        "hopeless)."))
    lang: Literal["fr", "en"] = "fr"
    data_dir: Path = REPO_DATA_DIR
    pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 8000
    forwarded_allow_ips: str | None = Field(default=None, description=(
        "Addresses or networks (comma-separated, CIDR allowed) of the reverse proxies whose "
        "X-Forwarded-For/-Proto the service believes; unset: forwarded headers are ignored, and "
        "the client is the TCP peer (production profile: the proxy's network)."))
    public_url: str | None = Field(default=None, description=(
        "The service's public base URL (scheme://host[:port], no path): every absolute URL the service writes "
        "(OGC links, TileJSON, the import Location, the verification URL printed on documents) starts with it, "
        "never with a Host header a client chose. Unset: http://{host}:{port} the service was started on "
        "(127.0.0.1 when it listens on every address). Behind a proxy: the proxy's public URL."))
    allowed_hosts: list[str] | None = Field(default=None, description=(
        "Host names (without port) a request's Host header may carry; any other host is refused (400). "
        "Unset: the public URL's host and the loopback names (localhost, 127.0.0.1, ::1). "
        "Environment: SIFC_ALLOWED_HOSTS='[\"sifc.bargny.sn\", \"10.0.0.5\"]'."))
    max_json_bytes: int = Field(default=2 * 1024**2, ge=1024, description=(
        "Largest body of a JSON or form request (every route that takes a body but an upload), refused "
        "with 413 before it is parsed."))
    analysis_rate_per_minute: int = Field(default=60, ge=1, description=(
        "Heavy spatial questions per minute per client (POST /parcels/intersecting, the quality checks of a "
        "commune, statistics), as a burst refilled evenly; beyond: 429 and Retry-After."))
    max_simplify_tolerance_m: float = 5000.0
    upload_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "sifc" / "uploads",
                             description="Where uploaded files wait for (and stay after) their import job.")
    max_upload_bytes: int = 512 * 1024**2
    import_workers: int = Field(default=1, ge=0, description="Import worker processes started by `sifc serve`.")
    workers: int = Field(default=1, ge=1, le=32, description=(
        "HTTP worker processes of `sifc serve`, sharing its port (uvicorn's workers). Each has its own database "
        "pools (pool_size each) and its own in-memory rate limits: N workers allow up to N times each per-client "
        "rate of a limit kept in memory (docs/limits.md). The import workers, the heartbeat and the signing keys "
        "stay with the parent process, once per node."))
    worker_poll_seconds: float = 0.5
    field_package_default_days: int = Field(default=30, ge=1, description=(
        "Days a field package stays open when its request names no expiry."))
    field_package_max_days: int = Field(default=90, ge=1, description=(
        "Longest life of a field package (days from issue); a later expiry is refused."))
    max_field_return_bytes: int = Field(default=200 * 1024**2, ge=1024, description=(
        "Largest returned field package (zip or GeoPackage), refused with 413 before it is read."))
    field_return_max_new_features: int = Field(default=5000, ge=0, description=(
        "Rows a returned file may hold beyond the parcels it was issued with (new parcels and bornes)."))
    field_return_max_photos: int = Field(default=2000, ge=0, description="Photos a returned package may carry.")
    list_page_max: int = 1000
    tile_max_age_s: int = Field(default=300, ge=0, description=(
        "Cache-Control max-age of vector tiles; 0: clients revalidate every tile (ETag) before using it."))
    approval_thresholds_ha: tuple[float, float] = Field(default=(10.0, 50.0), description=(
        "Areas (ha) up to which a délibération d'affectation is approved by the sous-préfet, then the "
        "préfet; above the second, the gouverneur (décret 72-1288 as amended in 2020 and 2022). "
        "Environment: SIFC_APPROVAL_THRESHOLDS_HA='[10, 50]'."))
    desaffectation_notice_days: int = Field(default=30, ge=0, description=(
        "Days between the formal notice (mise en demeure) and the date a désaffectation takes effect."))
    max_document_bytes: int = Field(default=20 * 1024**2, ge=1024, description=(
        "Largest scanned document (PDF, JPEG, PNG, TIFF) attached to a source."))
    basemap_url: str | None = Field(default=None, description=(
        "Optional base layer of the web map: an XYZ raster tile URL template with {z}, {x} and {y} "
        "(http or https; e.g. the commune's own tile server). Unset: no base layer, the map needs nothing "
        "but the service. Users can switch it off."))
    basemap_attribution: str = Field(default="", max_length=300, description=(
        "Attribution shown on the map for the base layer (its licence usually requires one)."))
    basemap_max_zoom: int = Field(default=19, ge=0, le=24, description="Highest zoom the base layer's server has.")

    @field_validator("approval_thresholds_ha")
    @classmethod
    def _increasing(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1]:
            raise ValueError("approval thresholds must be positive and increasing")
        return value

    @field_validator("basemap_url")
    @classmethod
    def _xyz_template(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")) or any(part not in value for part in ("{z}", "{x}", "{y}")):
            raise ConfigurationError("config.basemap_url")
        return value

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, value: str | None) -> str | None:
        """A node id fits in a seal key's id (``issued_document.key_id``: ``^[a-z0-9][a-z0-9-]{0,63}$``)."""
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", value.strip()):
            raise ConfigurationError("config.node_id", node_id=value[:100])
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") \
                or parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigurationError("config.public_url", url=value[:200])
        default_port = {"http": 80, "https": 443}[parts.scheme]
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port not in (None, default_port) else "")

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str] | None) -> list[str] | None:
        return [host.strip().lower().strip("[]") for host in value if host.strip()] if value else None

    @field_validator("database_url", "admin_database_url")
    @classmethod
    def _psycopg_driver(cls, value: str | None) -> str | None:
        return normalize_database_url(value) if value else value

    @field_validator("read_database_url")
    @classmethod
    def _read_psycopg_driver(cls, value: str | None) -> str | None:
        return normalize_database_url(value.strip()) if value and value.strip() else None

    @model_validator(mode="after")
    def _refuse_known_or_short_secret(self) -> Settings:
        """In every environment: a key that is short, or written in the source, lets anyone sign tokens."""
        if self.secret_key is None:
            return self
        secret = self.secret_key.get_secret_value().strip()
        if len(secret.encode("utf-8")) < MIN_SECRET_LENGTH:
            raise ConfigurationError("config.weak_secret", length=MIN_SECRET_LENGTH)
        from sifc.keyring import published

        if published(secret):
            raise ConfigurationError("config.published_secret")
        return self

    @property
    def public_base(self) -> str:
        """The public base URL, without a trailing slash (see ``public_url``)."""
        if self.public_url:
            return self.public_url
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def public_hosts(self) -> frozenset[str]:
        """The host names a request may name in its Host header (see ``allowed_hosts``)."""
        if self.allowed_hosts:
            return frozenset(self.allowed_hosts)
        return frozenset({(urlsplit(self.public_base).hostname or "").lower(), *LOOPBACK_NAMES})

    @property
    def tile_cache_control(self) -> str:
        """The ``Cache-Control`` of a vector tile: public data, kept ``tile_max_age_s`` seconds."""
        return f"public, max-age={self.tile_max_age_s}" if self.tile_max_age_s else "no-cache"

    @property
    def db_url(self) -> URL:
        """The service role's URL."""
        return make_url(self.database_url)

    @property
    def read_url(self) -> URL:
        """The read pool's URL: the streaming replica when ``read_database_url`` names one, else ``db_url``."""
        return make_url(self.read_database_url) if self.read_database_url else self.db_url

    @property
    def read_replica(self) -> bool:
        """Whether the read pool goes to another server than the writes (``read_database_url``)."""
        return self.read_url != self.db_url

    @property
    def admin_url(self) -> URL:
        """The superuser URL of the service's database.

        Defaults to the local ``postgres`` superuser on the same host, port and
        database as ``database_url`` (trust authentication on a developer box).
        """
        if self.admin_database_url:
            return make_url(self.admin_database_url)
        url = self.db_url
        return URL.create(url.drivername, username="postgres", host=url.host, port=url.port,
                          database=url.database, query=url.query)


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, built once per process."""
    return Settings()
