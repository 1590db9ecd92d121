"""Federation heartbeat: each pole's last sign of life, so the national node knows how old its copy is

A subscription's lag says how far the national node is behind the WAL a pole has sent, not how long
ago that pole last wrote anything: a pole that writes nothing for an hour and a pole cut off for an
hour look the same in the registry tables. So each pole writes its own row here every few seconds
(``sifc node beat``, and the background task of ``sifc serve``), the row travels with the pole's
publication (row filter: the pole's node id), and at the national node ``now() - beat_at`` is the age of
the data received from that pole (``sifc.federation.status.data_age``).

- ``federation_heartbeat``: one row per pole (``node_id``, ``beat_at``). Pole-owned without a commune:
  the replica identity is the primary key, which the row filter (``node_id = '<pole>'``) uses.
- A node writes only its own row, and only as a pole (``sifc_20_owner_guard``): an ordinary trigger,
  so the rows a national node receives (replication apply) pass, and nothing there can forge a pole's
  sign of life. Deleting stays allowed: a re-sync empties a pole's rows before copying them again.
- The service role may read the table and write its own beat (``INSERT``, ``UPDATE (beat_at)``).

Federation order: additive (a new table; ``sifc node migrate`` adds it to the publications once every
node has it, then refreshes the subscriptions).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

GUARD = r"""
CREATE FUNCTION federation_heartbeat_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sifc_node WHERE role = 'pole' AND node_id = NEW.node_id) THEN
        RAISE EXCEPTION 'federation_heartbeat: node % is not this pole', NEW.node_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    op.execute("""
    CREATE TABLE federation_heartbeat (
        node_id text NOT NULL,
        beat_at timestamptz NOT NULL,
        CONSTRAINT pk_federation_heartbeat PRIMARY KEY (node_id)
    )""")
    op.execute(GUARD)
    op.execute("CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE ON federation_heartbeat "
               "FOR EACH ROW EXECUTE FUNCTION federation_heartbeat_guard()")
    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for statement in ("GRANT SELECT, INSERT ON federation_heartbeat TO {}",
                      "GRANT UPDATE (beat_at) ON federation_heartbeat TO {}"):
        bind.exec_driver_sql(sql.SQL(statement).format(role).as_string(raw))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS federation_heartbeat")
    op.execute("DROP FUNCTION IF EXISTS federation_heartbeat_guard()")
