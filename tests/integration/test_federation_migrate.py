"""``sifc node migrate``'s checks, made before anything changes (the run itself: tests/federation)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from sifc.errors import InvalidInput
from sifc.federation import migration
from sifc.federation.migration import Member


def _script(revision: str, **module: object) -> SimpleNamespace:
    return SimpleNamespace(revision=revision, module=SimpleNamespace(**module))


def _member(settings, revision: str | None = "0017", role: str = "pole") -> Member:
    return Member(settings.admin_url, "dakar", role, "pole", revision)


def test_the_federation_file_is_one_url_per_line_with_comments(tmp_path):
    path = tmp_path / "federation.txt"
    path.write_text("# nodes\npostgresql://postgres@a/sifc  # national\n\n  host=b port=5433 dbname=sifc user=postgres\n")
    urls = migration.read_federation_file(path)
    assert urls == ["postgresql://postgres@a/sifc", "host=b port=5433 dbname=sifc user=postgres"]
    assert [str(migration.admin_url(u)) for u in urls] == ["postgresql+psycopg://postgres@a/sifc",
                                                           "postgresql+psycopg://postgres@b:5433/sifc"]
    with pytest.raises(InvalidInput) as refused:
        migration.read_federation_file(tmp_path / "absent.txt")
    assert refused.value.key == "federation.migrate.file_unreadable"


def test_a_single_node_or_no_node_is_refused(settings, engine):
    with pytest.raises(InvalidInput) as refused:
        migration.members([])
    assert refused.value.key == "federation.migrate.no_node"
    with pytest.raises(InvalidInput) as refused:
        migration.members([settings.admin_url.render_as_string(hide_password=False)])
    assert refused.value.key == "federation.migrate.not_federated"
    assert "single" in refused.value.message("en")


def test_pending_migrations_run_from_the_oldest_node_to_the_target(settings, engine):
    scripts = migration._scripts(settings)
    head = scripts.get_current_head()
    behind = [script.revision for script in migration.pending(scripts, [_member(settings, "0015")], "head")]
    assert behind[:2] == ["0016", "0017"] and behind[-1] == head
    assert migration.pending(scripts, [_member(settings, head)], "head") == []
    for revision, target, key in (("9999", "head", "federation.migrate.ahead"),
                                  ("0015", "nope", "federation.migrate.unknown_revision")):
        with pytest.raises(InvalidInput) as refused:
            migration.pending(scripts, [_member(settings, revision)], target)
        assert refused.value.key == key


def test_a_migration_states_its_order_additive_by_default(settings):
    scripts = migration._scripts(settings)
    assert migration.order_of(scripts.get_revision("0017")) == "additive"
    assert migration.order_of(_script("0099")) == "additive"  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as refused:
        migration.order_of(_script("0099", FEDERATION_ORDER="later"))  # type: ignore[arg-type]
    assert refused.value.key == "federation.migrate.unknown_order"


@pytest.fixture
def published_heartbeat(admin_engine):
    """A publication of federation_heartbeat's columns in the test database, as a pole's would be."""
    with admin_engine.begin() as conn:
        conn.execute(text("CREATE PUBLICATION sifc_test_removal FOR TABLE federation_heartbeat (node_id, beat_at)"))
    yield
    with admin_engine.begin() as conn:
        conn.execute(text("DROP PUBLICATION sifc_test_removal"))


def test_a_removal_must_name_what_it_removes_and_nothing_published(settings, published_heartbeat):
    node = _member(settings)
    undeclared = _script("0099", FEDERATION_ORDER="removal")
    with pytest.raises(InvalidInput) as refused:
        migration.check_removals([undeclared], [node])  # type: ignore[list-item]
    assert refused.value.key == "federation.migrate.removal_undeclared"
    for name in ("federation_heartbeat", "federation_heartbeat.beat_at"):
        still = _script("0099", FEDERATION_ORDER="removal", FEDERATION_REMOVES=(name,))
        with pytest.raises(InvalidInput) as refused:
            migration.check_removals([still], [node])  # type: ignore[list-item]
        assert refused.value.key == "federation.migrate.removal_still_published"
        assert refused.value.params["nodes"] == "dakar" and refused.value.params["name"] == name
        assert "docs/federation.md" in refused.value.message("fr")
    # The first step done (no longer published): the removal may go.
    done = _script("0099", FEDERATION_ORDER="removal", FEDERATION_REMOVES=("federation_heartbeat.retired",))
    migration.check_removals([done], [node])  # type: ignore[list-item]
