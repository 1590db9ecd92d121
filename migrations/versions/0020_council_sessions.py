"""Council sessions: agenda, attendees, decisions, one délibération for the whole agenda

ADR 0005 §4. A council (commission domaniale, conseil municipal) deliberates on a list of requests in a
session; deliberating the session moves every procedure of its agenda in one transaction, each with its
own decision, all citing one délibération.

- ``council_session`` (pole-owned): the commune, the kind (``commission_domaniale`` |
  ``conseil_municipal``), the date it is held, a public reference (« session ordinaire du 2e trimestre »),
  the number of members in office (for a quorum set as a fraction), the state (``planned`` →
  ``agenda_closed`` → ``deliberated``), and once deliberated: the délibération's number and date, its
  ``source_document`` (kind ``deliberation``), the minutes' sources, the members present and whether the
  quorum was met. ``revision`` counts the session's changes (its ``If-Match`` version). ``created_by``
  is personal.
- ``session_item``: one procedure on the agenda, at its position; once deliberated its decision
  (``granted`` | ``refused`` | ``deferred``, a reason required for the last two, like the steps they
  record), the votes (for, against, abstentions) and the ``seq`` of the step it recorded. ``reason``
  and ``added_by`` are personal. A procedure is on the agenda of a session once.
- ``session_attendee``: who attended, as a party or a name (personal), in a capacity (``president``,
  ``membre``, ``secretaire``, ``invite``), present or excused. Presidents and members present make the
  quorum.

All three carry ``commune_code`` with the owner guard ``sifc_20_owner_guard`` and the replica index
``uq_<table>_replica`` as their replica identity (migration 0016). The service role reads and writes
them: the columns of a session's state and délibération and of an item's place and decision are
updatable, an item may be deleted (taken off the agenda before it closes: the service refuses it
after); attendees are inserted only.

Federation order: additive (new tables; ``sifc node migrate`` adds them to the publications).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"

TABLES = {"council_session": ("id",), "session_item": ("session_id", "procedure_id"),
          "session_attendee": ("session_id", "seq")}

# What the service changes: a session's state and its délibération; an item's place and decision.
SESSION_UPDATES = ("state", "revision", "deliberation_number", "deliberated_on", "deliberation_source_id",
                   "minutes_source_ids", "members_present", "quorum_met")
ITEM_UPDATES = ("position", "decision", "reason", "votes_for", "votes_against", "abstentions", "step_seq")


def _grant(statement: str, table: str) -> None:
    bind = op.get_bind()
    role = sql.Identifier(context.config.attributes["service_url"].username)
    formatted = sql.SQL(statement).format(sql.Identifier(table), role)
    bind.exec_driver_sql(formatted.as_string(bind.connection.dbapi_connection))


def upgrade() -> None:
    op.execute("""
    CREATE TABLE council_session (
        id uuid NOT NULL,
        commune_code text NOT NULL,
        kind text NOT NULL,
        held_on date NOT NULL,
        reference text,
        members_in_office integer,
        state text NOT NULL DEFAULT 'planned',
        revision integer NOT NULL DEFAULT 1,
        deliberation_number text,
        deliberated_on date,
        deliberation_source_id uuid,
        minutes_source_ids uuid[] NOT NULL DEFAULT '{}',
        members_present integer,
        quorum_met boolean,
        synthetic boolean NOT NULL DEFAULT false,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_council_session PRIMARY KEY (id),
        CONSTRAINT fk_council_session_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT fk_council_session_deliberation_source_id_source_document FOREIGN KEY (deliberation_source_id)
            REFERENCES source_document (id),
        CONSTRAINT ck_council_session_kind CHECK (kind IN ('commission_domaniale', 'conseil_municipal')),
        CONSTRAINT ck_council_session_state CHECK (state IN ('planned', 'agenda_closed', 'deliberated')),
        CONSTRAINT ck_council_session_members CHECK (members_in_office IS NULL OR members_in_office > 0),
        CONSTRAINT ck_council_session_deliberated CHECK (state <> 'deliberated' OR (
            deliberation_number IS NOT NULL AND deliberated_on IS NOT NULL AND deliberation_source_id IS NOT NULL
            AND quorum_met))
    )""")
    op.execute("CREATE INDEX ix_council_session_commune_code ON council_session (commune_code, held_on)")
    op.execute("""
    CREATE TABLE session_item (
        session_id uuid NOT NULL,
        procedure_id uuid NOT NULL,
        commune_code text NOT NULL,
        position integer NOT NULL,
        decision text,
        reason text,
        votes_for integer,
        votes_against integer,
        abstentions integer,
        step_seq integer,
        added_by text NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_session_item PRIMARY KEY (session_id, procedure_id),
        CONSTRAINT fk_session_item_session_id_council_session FOREIGN KEY (session_id)
            REFERENCES council_session (id),
        CONSTRAINT fk_session_item_procedure_id_tenure_procedure FOREIGN KEY (procedure_id)
            REFERENCES tenure_procedure (id),
        CONSTRAINT ck_session_item_decision CHECK (decision IN ('granted', 'refused', 'deferred')),
        CONSTRAINT ck_session_item_reason CHECK (decision IS NULL OR decision = 'granted'
            OR btrim(coalesce(reason, '')) <> ''),
        CONSTRAINT ck_session_item_votes CHECK (coalesce(votes_for, 0) >= 0 AND coalesce(votes_against, 0) >= 0
            AND coalesce(abstentions, 0) >= 0)
    )""")
    op.execute("CREATE INDEX ix_session_item_procedure_id ON session_item (procedure_id)")
    op.execute("""
    CREATE TABLE session_attendee (
        session_id uuid NOT NULL,
        seq integer NOT NULL,
        commune_code text NOT NULL,
        party_id uuid,
        name text,
        capacity text NOT NULL,
        present boolean NOT NULL DEFAULT true,
        added_by text NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_session_attendee PRIMARY KEY (session_id, seq),
        CONSTRAINT fk_session_attendee_session_id_council_session FOREIGN KEY (session_id)
            REFERENCES council_session (id),
        CONSTRAINT ck_session_attendee_capacity CHECK (capacity IN ('president', 'membre', 'secretaire', 'invite')),
        CONSTRAINT ck_session_attendee_who CHECK (party_id IS NOT NULL OR btrim(coalesce(name, '')) <> '')
    )""")
    for table, key in TABLES.items():
        op.execute(f"CREATE TRIGGER sifc_20_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION sifc_owner_guard()")
        op.execute(f"CREATE UNIQUE INDEX uq_{table}_replica ON {table} ({', '.join(key)}, commune_code)")
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY USING INDEX uq_{table}_replica")
    for table in TABLES:
        _grant("GRANT SELECT, INSERT ON {} TO {}", table)
    _grant(f"GRANT UPDATE ({', '.join(SESSION_UPDATES)}) ON {{}} TO {{}}", "council_session")
    _grant(f"GRANT UPDATE ({', '.join(ITEM_UPDATES)}) ON {{}} TO {{}}", "session_item")
    _grant("GRANT DELETE ON {} TO {}", "session_item")  # taken off the agenda before it closes


def downgrade() -> None:
    for table in ("session_attendee", "session_item", "council_session"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
