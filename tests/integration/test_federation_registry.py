"""The federation registry (sifc.federation.registry) against the migrated schema (ADR 0004).

A table added by a later migration without a registry entry fails here, so that no table is left out
of the publications, or published without its owner's row filter.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from sifc.federation import registry

# bigint identities are refused where rows travel between nodes (two publishers would collide), except in
# the reference, whose only writer is the national node.
NATIONAL_IDENTITIES = {("commune_alias", "id"), ("boundary_version", "id")}


def _schema_tables(conn) -> set[str]:
    return set(conn.execute(text("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND c.relname NOT IN ('alembic_version', 'spatial_ref_sys')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')""")).scalars())


def _migrated(conn, entry: registry.Replicated) -> bool:
    return conn.execute(text("SELECT to_regclass(quote_ident(:t)) IS NOT NULL"), {"t": entry.table}).scalar()


def test_every_table_of_the_schema_is_in_the_registry_once(admin_engine):
    names = [entry.table for entry in registry.TABLES]
    assert len(names) == len(set(names))
    with admin_engine.connect() as conn:
        tables = _schema_tables(conn)
        missing = [entry.table for entry in registry.TABLES if entry.since is None and entry.table not in tables]
    assert sorted(tables - set(names)) == []
    assert missing == []


def test_keys_are_the_primary_keys(admin_engine):
    with admin_engine.connect() as conn:
        for entry in registry.TABLES:
            if not _migrated(conn, entry):
                continue
            key = conn.execute(text("""
                SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey, a.attnum))
                FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = to_regclass(quote_ident(:t)) AND i.indisprimary"""), {"t": entry.table}).scalar()
            assert tuple(key or ()) == entry.key, entry.table


def test_pole_tables_carry_a_commune_the_owner_guard_and_their_replica_identity(admin_engine):
    guarded = [entry for entry in registry.owned_by("pole") if entry.guarded]
    assert len(guarded) >= 17  # and one more per pole-owned table of a later migration
    with admin_engine.connect() as conn:
        for entry in guarded:
            not_null = conn.execute(text("""
                SELECT attnotnull FROM pg_attribute
                WHERE attrelid = to_regclass(quote_ident(:t)) AND attname = :c AND NOT attisdropped"""),
                {"t": entry.table, "c": entry.commune_column}).scalar()
            assert not_null is True, entry.table
            trigger = conn.execute(text("""
                SELECT t.tgfoid::regproc::text, t.tgenabled FROM pg_trigger t
                WHERE t.tgrelid = to_regclass(quote_ident(:t)) AND t.tgname = 'sifc_20_owner_guard'"""),
                {"t": entry.table}).one_or_none()
            # Enabled for origin writes only ('O'): not fired while a subscription applies rows.
            assert trigger == ("sifc_owner_guard", "O"), entry.table
            identity = conn.execute(text("""
                SELECT c.relreplident, (SELECT i.indexrelid::regclass::text FROM pg_index i
                                        WHERE i.indrelid = c.oid AND i.indisreplident)
                FROM pg_class c WHERE c.oid = to_regclass(quote_ident(:t))"""), {"t": entry.table}).one()
            assert tuple(identity) == ("i", entry.replica_index), entry.table
            columns = conn.execute(text("""
                SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey, a.attnum))
                FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indexrelid = to_regclass(quote_ident(:i))"""), {"i": entry.replica_index}).scalar()
            assert tuple(columns) == (*entry.key, "commune_code"), entry.table


def test_audits_and_national_tables_have_no_owner_guard(admin_engine):
    with admin_engine.connect() as conn:
        for entry in registry.TABLES:
            unguarded = entry.owner != "pole" or entry.publish == "insert"  # (the heartbeat has a guard of its own)
            if not unguarded or not _migrated(conn, entry):
                continue
            guard = conn.execute(text("""
                SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass(quote_ident(:t))
                  AND tgname = 'sifc_20_owner_guard'"""), {"t": entry.table}).scalar()
            assert guard == 0, entry.table


def test_no_bigint_identity_leaves_its_node(admin_engine):
    with admin_engine.connect() as conn:
        identities = set(tuple(row) for row in conn.execute(text("""
            SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND a.attidentity <> '' AND NOT a.attisdropped""")).all())
    travelling = {(table, column) for table, column in identities if registry.get(table).owner != "local"}
    assert travelling == NATIONAL_IDENTITIES


def test_personal_columns_exist(admin_engine):
    with admin_engine.connect() as conn:
        for entry in registry.TABLES:
            if not entry.personal or not _migrated(conn, entry):
                continue
            columns = set(conn.execute(text("""
                SELECT attname::text FROM pg_attribute
                WHERE attrelid = to_regclass(quote_ident(:t)) AND attnum > 0 AND NOT attisdropped"""),
                {"t": entry.table}).scalars())
            assert set(entry.personal) <= columns, entry.table


def test_published_columns_leave_out_generated_and_personal_columns(admin_engine):
    parcels = registry.get("parcel_version")
    with admin_engine.connect() as conn:
        under_pole = registry.published_columns(conn, parcels, "pole")
        under_national = registry.published_columns(conn, parcels, "national")
        with pytest.raises(ValueError):
            registry.published_columns(conn, parcels, "everyone")
    for generated in ("area_m2", "geom_3857"):
        assert generated not in under_pole and generated not in under_national
    assert {"author", "closed_by", "reason", "close_reason"} & set(under_pole) == set()
    assert {"author", "closed_by", "reason", "close_reason"} <= set(under_national)
    assert under_pole[:2] == ["parcel_id", "version"] and "commune_code" in under_pole and "geom" in under_pole


def test_every_table_and_its_owner(admin_engine):
    assert {entry.table for entry in registry.owned_by("national")} == {
        "pole", "region", "department", "arrondissement", "commune", "commune_alias", "boundary_version",
        "federation_node", "setting_default"}
    assert {entry.table for entry in registry.owned_by("local")} == {
        "sifc_node", "territory_piece", "import_job", "app_user", "app_user_scope", "api_key", "api_key_scope",
        "refresh_token"}
    audits = [entry for entry in registry.TABLES if entry.publish == "insert"]
    assert [(a.table, a.owner, a.personal) for a in audits] == [
        ("write_audit", "pole", ("before", "after")), ("access_audit", "pole", ("purpose",))]
    with pytest.raises(KeyError):
        registry.get("no_such_table")


def _personal_checks(conn) -> dict[str, str]:
    found = {}
    for entry in registry.TABLES:
        if not entry.personal:
            continue
        for name, definition in conn.execute(text("""
            SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
            WHERE c.conrelid = to_regclass(quote_ident(:t)) AND c.contype = 'c'
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
                          AND a.attname = ANY(:personal))"""), {"t": entry.table, "personal": list(entry.personal)}):
            found[name] = definition
    return found


def test_relax_personal_lets_every_personal_column_hold_null(admin_engine):
    # A rolled-back transaction is the scratch copy: DDL is transactional in PostgreSQL.
    with admin_engine.connect() as conn, conn.begin() as scratch:
        before = _personal_checks(conn)
        assert "ck_party_version_name" in before and "ck_parcel_version_closing" in before
        registry.relax_personal(conn)
        relaxed = _personal_checks(conn)
        registry.relax_personal(conn)  # idempotent
        assert _personal_checks(conn) == relaxed and relaxed.keys() == before.keys()
        still_required = [f"{e.table}.{column}" for e in registry.TABLES if e.personal
                          for column in conn.execute(text("""
                              SELECT attname::text FROM pg_attribute
                              WHERE attrelid = to_regclass(quote_ident(:t)) AND attname = ANY(:personal)
                                AND attnotnull"""), {"t": e.table, "personal": list(e.personal)}).scalars()]
        assert still_required == []
        # Rows as a publication without the personal columns delivers them (apply: replica mode).
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        commune = "SN1301-sandiara"
        conn.execute(text("""
            INSERT INTO party_version (party_id, version, kind, commune_code, action)
            VALUES (:id, 1, 'natural_person', :c, 'create')"""), {"id": uuid.uuid4(), "c": commune})
        conn.execute(text("""
            INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, action, valid_to)
            SELECT :id, 1, 'absent', :c, ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 10)), 'create', now()
            FROM commune WHERE code = :c"""), {"id": uuid.uuid4(), "c": commune})
        conn.execute(text("""
            INSERT INTO tenure_procedure (id, parcel_id, commune_code) VALUES (:id, :p, :c)"""),
            {"id": uuid.uuid4(), "p": uuid.uuid4(), "c": commune})
        conn.execute(text("""
            INSERT INTO field_package (id, commune_code, area, selection, expires_at, status, closed_at, format,
                                       hmac_kid, mac)
            SELECT :id, :c, ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 10)), '{}', now() + interval '1 day', 'lost',
                   now(), 1, 'k', repeat('0', 64)
            FROM commune WHERE code = :c"""), {"id": uuid.uuid4(), "c": commune})
        conn.execute(text("""
            INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id, commune_code)
            VALUES ('cli', 'sifc', 'administrateur', 'x', 'parcel', 'x', :c)"""), {"c": commune})
        scratch.rollback()
    with admin_engine.connect() as conn:
        assert _personal_checks(conn) == before  # a pole keeps its constraints
