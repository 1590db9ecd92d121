"""``sifc db backup`` / ``sifc db restore`` with PostgreSQL's own dump format."""

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from sifc import provision
from tests.conftest import TABLES, table_fingerprint
from tests.e2e.helpers import run_cli


def _fingerprints(url):
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        result = {t: table_fingerprint(conn, t) for t in TABLES}
    engine.dispose()
    return result


def test_backup_restores_into_a_new_database_with_the_same_rows(fresh_db, tmp_path):
    dump = tmp_path / "sifc.dump"
    done = run_cli(fresh_db, "db", "backup", str(dump))
    assert done.returncode == 0, done.stderr
    assert dump.stat().st_size > 1_000_000
    target = f"{fresh_db.db_url.database}_restored"
    provision.drop_database(fresh_db.admin_url, target)
    try:
        done = run_cli(fresh_db, "db", "restore", str(dump), "--database", target)
        assert done.returncode == 0, done.stderr
        original = _fingerprints(fresh_db.admin_url)
        assert original["commune"][0] == 549
        assert _fingerprints(fresh_db.admin_url.set(database=target)) == original
        # The service role can read the restored database.
        service = create_engine(fresh_db.db_url.set(database=target), poolclass=NullPool)
        with service.connect() as conn:
            assert table_fingerprint(conn, "commune") == original["commune"]
        service.dispose()
        # Restoring over a database that holds data is refused, and changes nothing.
        again = run_cli(fresh_db, "db", "restore", str(dump), "--database", target)
        assert again.returncode == 2 and "n'est pas vide" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        provision.drop_database(fresh_db.admin_url, target)


def test_restore_of_a_missing_file_is_one_line(fresh_db):
    done = run_cli(fresh_db, "db", "restore", "/nonexistent.dump", "--database", "sifc_never")
    assert done.returncode == 2
    assert "Sauvegarde introuvable" in done.stderr and "Traceback" not in done.stderr


def test_restore_of_a_broken_file_leaves_no_database(fresh_db, tmp_path):
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"not a dump")
    target = f"{fresh_db.db_url.database}_broken"
    done = run_cli(fresh_db, "db", "restore", str(broken), "--database", target)
    assert done.returncode == 2 and "pg_restore" in done.stderr and "Traceback" not in done.stderr
    assert not provision.database_exists(fresh_db.admin_url, target)
