"""Every table of the schema, with who owns its rows in a federation (ADR 0004).

- ``pole``: each row belongs to a commune, and the commune to a pole; only the pole's node writes it
  (a database trigger refuses the others, migration 0016) and publishes it, row-filtered on
  ``commune_code`` and without its personal columns under the default policy.
- ``national``: the territorial reference and the directory of nodes, written by the national node
  only and published to every pole.
- ``local``: kept by each node for itself (accounts, keys, sessions, jobs, the node's own identity,
  the tiles' territory pieces rebuilt from the reference); never replicated.

The integration test ``test_federation_registry`` compares this list with the migrated schema, so a
table added without an entry fails CI. ``personal`` names the columns that stay at the pole under
``personal = 'pole'`` (loi 2008-12): the parties' identities and contacts, the authors' user names,
the officers' free text (``sifc.personal``), the scans themselves, and the write audit's before and after
records, which hold whole versions that a column list cannot redact inside the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

Owner = Literal["pole", "national", "local"]
PERSONAL_POLICIES = ("pole", "national")

# The columns a version carries about who closed or wrote it and why (parcels, parties, rights, bornes).
_VERSION_AUTHORS = ("author", "reason", "closed_by", "close_reason")


@dataclass(frozen=True)
class Replicated:
    """One table: its owner, primary key, commune column and personal columns."""

    table: str
    owner: Owner
    key: tuple[str, ...]
    commune_column: str | None = "commune_code"
    personal: tuple[str, ...] = ()
    publish: Literal["all", "insert"] = "all"
    since: str | None = None

    @property
    def replica_index(self) -> str:
        """The unique index ``(key…, commune)`` that is the replica identity of a pole-owned table.

        A publication's row filter must be covered by the replica identity, or every UPDATE and DELETE
        of the table is refused at the publisher (ADR 0004, point 2).
        """
        return f"uq_{self.table}_replica"

    @property
    def guarded(self) -> bool:
        """Whether the owner guard (``sifc_20_owner_guard``) protects the table: pole rows with a commune."""
        return self.owner == "pole" and self.publish == "all" and self.commune_column is not None


def _pole(table: str, key: tuple[str, ...], personal: tuple[str, ...] = ()) -> Replicated:
    return Replicated(table, "pole", key, personal=personal)


def _national(table: str, key: tuple[str, ...]) -> Replicated:
    return Replicated(table, "national", key, commune_column=None)


def _local(table: str, key: tuple[str, ...]) -> Replicated:
    return Replicated(table, "local", key, commune_column=None)


TABLES: tuple[Replicated, ...] = (
    # The territorial reference and the directory of nodes (national).
    _national("pole", ("code",)),
    _national("region", ("code",)),
    _national("department", ("code",)),
    _national("arrondissement", ("code",)),
    _national("commune", ("code",)),
    _national("commune_alias", ("id",)),
    _national("boundary_version", ("id",)),
    _national("federation_node", ("node_id",)),
    # The national defaults of the commune settings, each citing its text (migration 0018).
    Replicated("setting_default", "national", ("key", "valid_from"), commune_column=None, since="0018"),
    # The registry (pole).
    _pole("import_batch", ("id",), ("file_name", "created_by")),
    _pole("parcel_version", ("parcel_id", "version"), _VERSION_AUTHORS),
    _pole("parcel_mutation", ("id",), ("reason", "author")),
    _pole("parcel_lineage", ("mutation_id", "parent_id", "child_id")),
    _pole("party_version", ("party_id", "version"),
          ("name", "given_names", "id_number", "contact", "members", "sex", *_VERSION_AUTHORS)),
    _pole("rrr_version", ("rrr_id", "version"), ("description", *_VERSION_AUTHORS)),
    _pole("rrr_holder", ("rrr_id", "version", "party_id")),
    _pole("tenure_procedure", ("id",), ("applicants", "purpose", "created_by")),
    _pole("procedure_step", ("procedure_id", "seq"), ("details", "reason", "author")),
    _pole("source_document", ("id",), ("description", "created_by")),
    _pole("source_file", ("id",), ("file_name", "content", "created_by")),
    _pole("issued_document", ("code",), ("issued_by",)),
    # Tracking codes of the récépissé (migration 0026): the hash only, nothing personal.
    Replicated("tracking_code", "pole", ("id",), since="0026"),
    _pole("borne_version", ("borne_id", "version"), ("source", *_VERSION_AUTHORS)),
    _pole("field_package", ("id",), ("issued_to", "issued_by", "purpose", "closed_by", "close_reason")),
    _pole("field_package_item", ("package_id", "fid")),
    _pole("field_return", ("id",), ("returned_by",)),
    _pole("parcel_source", ("parcel_id", "source_id"), ("attached_by",)),
    # Localités (villages, quartiers) and the per-commune gender indicators (migration 0023, ADR 0005 §3).
    Replicated("localite_version", "pole", ("localite_id", "version"), personal=_VERSION_AUTHORS, since="0023"),
    Replicated("tenure_indicator", "pole", ("id",), since="0023"),
    # Each commune's own settings, dated and sourced (migration 0018); who set them is personal.
    Replicated("commune_setting", "pole", ("id",), personal=("set_by",), since="0018"),
    # Systematic campaigns, public display and claims (migration 0024): presumed holders, claimants,
    # grounds, resolution reasons and authors stay at the pole.
    Replicated("campaign", "pole", ("id",), personal=("created_by",), since="0024"),
    Replicated("campaign_parcel", "pole", ("campaign_id", "parcel_id"), personal=("presumed_holders", "added_by"),
               since="0024"),
    Replicated("display_period", "pole", ("id",), personal=("opened_by", "closed_by"), since="0024"),
    Replicated("claim", "pole", ("id",), personal=("claimant_party_id", "claimant_name", "grounds",
                                                   "resolution_reason", "resolved_by", "created_by"), since="0024"),
    # The disputes register (migration 0022): the grounds, notes, outcome and authors stay at the pole.
    Replicated("dispute", "pole", ("id",), personal=("description", "created_by"), since="0022"),
    Replicated("dispute_parcel", "pole", ("dispute_id", "parcel_id"), since="0022"),
    Replicated("dispute_party", "pole", ("dispute_id", "party_id"), since="0022"),
    Replicated("dispute_step", "pole", ("dispute_id", "seq"), personal=("note", "outcome", "author"), since="0022"),
    # Fees and receipts (migration 0025): who recorded a schedule, an assessment or a payment, and why a
    # payment was cancelled, are personal; amounts, methods, receipt numbers and the counters are not.
    Replicated("fee_schedule", "pole", ("id",), personal=("recorded_by",), since="0025"),
    Replicated("procedure_fee", "pole", ("procedure_id",), personal=("assessed_by",), since="0025"),
    Replicated("payment", "pole", ("id",), personal=("reason", "recorded_by"), since="0025"),
    Replicated("receipt_counter", "pole", ("id",), since="0025"),
    # Council sessions (migration 0020): who created them, attendees' names, the motives of decisions.
    Replicated("council_session", "pole", ("id",), personal=("created_by",), since="0020"),
    Replicated("session_item", "pole", ("session_id", "procedure_id"), personal=("reason", "added_by"), since="0020"),
    Replicated("session_attendee", "pole", ("session_id", "seq"), personal=("party_id", "name", "added_by"),
               since="0020"),
    # The audits (pole, append-only: inserts only, their own publication, no owner guard; a row
    # without a commune stays on its node).
    Replicated("write_audit", "pole", ("id",), personal=("before", "after"), publish="insert"),
    Replicated("access_audit", "pole", ("id",), personal=("purpose",), publish="insert"),
    # Each pole's heartbeat, row-filtered on its own node id (migration 0017).
    Replicated("federation_heartbeat", "pole", ("node_id",), commune_column=None, since="0017"),
    # Node-local.
    _local("sifc_node", ("singleton",)),
    _local("territory_piece", ()),
    _local("import_job", ("id",)),
    _local("app_user", ("id",)),
    _local("app_user_scope", ("user_id", "level", "code")),
    _local("api_key", ("id",)),
    _local("api_key_scope", ("key_id", "level", "code")),
    _local("refresh_token", ("id",)),
)

_BY_NAME = {entry.table: entry for entry in TABLES}


def get(table: str) -> Replicated:
    """The entry of ``table``; KeyError for a table the registry does not know."""
    return _BY_NAME[table]


def owned_by(owner: Owner) -> tuple[Replicated, ...]:
    """The entries of one owner, in the registry's order (parents before children)."""
    return tuple(entry for entry in TABLES if entry.owner == owner)


def _columns(conn: Connection, table: str) -> list[tuple[str, bool, str]]:
    """(name, NOT NULL, generated) of the table's live columns, in their order; [] if it does not exist."""
    return [(row[0], row[1], row[2]) for row in conn.execute(text("""
        SELECT a.attname, a.attnotnull, a.attgenerated::text FROM pg_attribute a
        WHERE a.attrelid = to_regclass(quote_ident(:t)) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum"""), {"t": table})]


def published_columns(conn: Connection, entry: Replicated, personal_policy: str) -> list[str]:
    """The columns a publication lists for ``entry``: all but generated ones, and personal ones under 'pole'.

    Generated columns cannot be listed (each node computes its own); a column left out arrives as
    NULL at the subscriber, which is why ``relax_personal`` runs on the national node.
    """
    if personal_policy not in PERSONAL_POLICIES:
        raise ValueError(f"unknown personal-data policy: {personal_policy!r}")
    hidden = set(entry.personal) if personal_policy == "pole" else set()
    return [name for name, _, generated in _columns(conn, entry.table) if not generated and name not in hidden]


_RELAXED = "sifc: relaxed for personal = pole (NULL in personal columns)"


def relax_personal(conn: Connection) -> None:
    """Let every personal column hold NULL: the national node's schema under ``personal = 'pole'``.

    A publication without the personal columns sends them as NULL, which a NOT NULL or a CHECK would
    refuse, stopping the subscription. NOT NULL is dropped; a CHECK naming a personal column is
    replaced by the same CHECK or'ed with that column being NULL, so non-NULL values are still checked.
    Idempotent (a relaxed CHECK carries a comment). National nodes only: a pole keeps its constraints.
    """
    prep = conn.dialect.identifier_preparer
    for entry in TABLES:
        if not entry.personal:
            continue
        columns = {name: notnull for name, notnull, _ in _columns(conn, entry.table)}
        if not columns:
            continue  # a table of a later migration, not there yet
        table = prep.quote(entry.table)
        for name in entry.personal:
            if columns.get(name):
                conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {prep.quote(name)} DROP NOT NULL"))
        checks = conn.execute(text("""
            SELECT c.conname, pg_get_constraintdef(c.oid),
                   ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) ORDER BY a.attnum)
            FROM pg_constraint c
            WHERE c.conrelid = to_regclass(quote_ident(:t)) AND c.contype = 'c'
              AND obj_description(c.oid, 'pg_constraint') IS DISTINCT FROM :relaxed
            ORDER BY c.conname"""), {"t": entry.table, "relaxed": _RELAXED}).all()
        for name, definition, names in checks:
            personal = [column for column in names if column in entry.personal]
            if not personal:
                continue
            # A constraint added NOT VALID (old rows exempt) stays so: relaxing it must not judge old rows.
            expression = definition.removeprefix("CHECK ").removesuffix(" NOT VALID")
            validity = " NOT VALID" if definition.endswith(" NOT VALID") else ""
            nulls = " OR ".join(f"{prep.quote(column)} IS NULL" for column in personal)
            constraint = prep.quote(name)
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}"))
            conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} "
                              f"CHECK ({nulls} OR {expression}){validity}"))
            conn.execute(text(f"COMMENT ON CONSTRAINT {constraint} ON {table} IS '{_RELAXED}'"))
