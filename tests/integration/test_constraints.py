"""The database itself refuses inconsistent territorial data, whoever writes it."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

BOWTIE = "MULTIPOLYGON(((300000 1600000, 301000 1601000, 301000 1600000, 300000 1601000, 300000 1600000)))"
SQUARE = "MULTIPOLYGON(((300000 1600000, 301000 1600000, 301000 1601000, 300000 1601000, 300000 1600000)))"


def _insert_commune(db, *, code="SN0104-test", geom=f"ST_GeomFromText('{SQUARE}', 32628)",
                    department="SN0104", region="SN01", arrondissement=None):
    db.execute(text(
        "INSERT INTO commune (code, name, name_search, department_code, region_code, "
        f"arrondissement_code, geom, boundary_status, source) VALUES (:code, 'Test', 'test', "
        f":department, :region, :arrondissement, {geom}, 'provisional', 'test')"),
        {"code": code, "department": department, "region": region,
         "arrondissement": arrondissement})


def _refused(db, error, **kwargs):
    with pytest.raises(error), db.begin_nested():
        _insert_commune(db, **kwargs)


def test_a_valid_commune_is_accepted(db):
    _insert_commune(db)
    assert db.execute(text("SELECT count(*) FROM commune WHERE code = 'SN0104-test'")).scalar() == 1


@pytest.mark.parametrize("geom", [
    f"ST_GeomFromText('{BOWTIE}', 32628)",  # invalid (self-intersecting)
    f"ST_GeomFromText('{SQUARE}', 4326)",  # wrong SRID
    "ST_GeomFromText('POINT(300000 1600000)', 32628)",  # wrong type
    "ST_GeomFromText('MULTIPOLYGON EMPTY', 32628)",  # empty
], ids=["bowtie", "srid-4326", "point", "empty"])
def test_bad_geometry_is_refused(db, geom):
    _refused(db, (IntegrityError, DBAPIError), geom=geom)


def test_duplicate_code_is_refused(db):
    _refused(db, IntegrityError, code="SN0104-bargny")


def test_code_must_start_with_its_department(db):
    _refused(db, IntegrityError, code="SN0101-test")


def test_department_must_belong_to_the_given_region(db):
    _refused(db, IntegrityError, region="SN13")


def test_arrondissement_must_belong_to_the_communes_department(db):
    _refused(db, IntegrityError, arrondissement="SN130101")


def test_official_commune_needs_a_geometry(db):
    with pytest.raises(IntegrityError), db.begin_nested():
        db.execute(text("UPDATE commune SET boundary_status = 'official', geom = NULL "
                        "WHERE code = 'SN0104-bargny'"))


def test_boundary_history_is_append_only_for_the_service_role(db):
    db.execute(text(
        "INSERT INTO boundary_version (level, unit_code, geom, boundary_status, source, "
        "valid_from, valid_to, replaced_by) SELECT 'commune', code, geom, boundary_status, "
        "source, valid_from, now(), 'test' FROM commune WHERE code = 'SN0104-bargny'"))
    for statement in ("UPDATE boundary_version SET source = 'x'", "DELETE FROM boundary_version",
                      "TRUNCATE boundary_version"):
        with pytest.raises(ProgrammingError, match="permission denied"), db.begin_nested():
            db.execute(text(statement))


def test_boundary_history_is_append_only_even_for_the_owner(admin_engine):
    with admin_engine.connect() as conn, conn.begin() as outer:
        conn.execute(text(
            "INSERT INTO boundary_version (level, unit_code, boundary_status, source, "
            "valid_from, valid_to, replaced_by) VALUES ('commune', 'x', 'provisional', 's', "
            "now(), now(), 't')"))
        with pytest.raises(ProgrammingError, match="append-only"):
            conn.execute(text("UPDATE boundary_version SET source = 'x'"))
        outer.rollback()


def test_service_role_is_not_a_superuser_and_cannot_change_the_schema(db):
    row = db.execute(text("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                          "WHERE rolname = current_user")).one()
    assert tuple(row) == (False, False, False)
    with pytest.raises(ProgrammingError, match="permission denied"), db.begin_nested():
        db.execute(text("CREATE TABLE public.intruder (id int)"))
    with pytest.raises(ProgrammingError, match="permission denied"), db.begin_nested():
        db.execute(text("DELETE FROM commune WHERE code = 'SN0104-bargny'"))


VERSION = """
    INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, batch_id, action, author)
    VALUES (gen_random_uuid(), 1, 'absent', :commune, ST_Multi(ST_MakeEnvelope(251000, 1629000, 251020, 1629020,
            32628)), CAST(:batch AS uuid), :action, 'test')
"""


@pytest.mark.parametrize(("commune", "batch", "action", "missing"), [
    ("SN0104-nowhere", None, "api:create", "commune SN0104-nowhere"),
    ("SN0104-bargny", "00000000-0000-0000-0000-00000000abcd", "import", "import batch"),
])
def test_parcel_versions_refer_to_existing_communes_and_batches(db, commune, batch, action, missing):
    # Checked once per statement (migration 0004), with the same error as a foreign key.
    with pytest.raises(IntegrityError, match=missing), db.begin_nested():
        db.execute(text(VERSION), {"commune": commune, "batch": batch, "action": action})


def test_a_referenced_commune_cannot_be_deleted_or_renumbered(admin_engine):
    with admin_engine.connect() as conn:
        outer = conn.begin()
        conn.execute(text(VERSION), {"commune": "SN0104-bargny", "batch": None, "action": "api:create"})
        with pytest.raises(IntegrityError, match="parcels refer to it"):
            conn.execute(text("UPDATE commune SET code = 'SN0104-bargny2' WHERE code = 'SN0104-bargny'"))
        outer.rollback()
