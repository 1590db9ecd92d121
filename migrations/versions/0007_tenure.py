"""Tenure records (LADM): parties, rights/restrictions/responsibilities, sources, procedures, write audit

- ``party_version``: natural persons, groups (famille, GIE, association…) and legal entities,
  versioned like parcels (``valid_from``/``valid_to``, author, reason). Name, given names, identity
  number and contact are personal data (loi 2008-12).
- ``rrr_version`` and ``rrr_holder``: a right (affectation, bail, titre foncier, droit de
  superficie, occupation), restriction (servitude, zone réservée, litige) or responsibility on a
  parcel, with its holders and their shares (a fraction; the shares of a right sum to 1, checked
  at commit by a deferred constraint trigger), legal start and end dates, and the sources it rests
  on. One affectation in force per parcel at most (a partial unique index): a shared affectation
  is one right with several holders.
- ``source_document`` and ``source_file``: délibérations (number, date, council session),
  approvals (authority, date), acts, survey plans, procès-verbaux; attached files with their
  SHA-256 and media type.
- ``tenure_procedure`` and ``procedure_step``: a request for an affectation and the steps of the
  commission domaniale's procedure, each with its date, author and documents.
- ``write_audit``: every write (who, when, what, before and after).

History is never lost: versions may only be closed (``valid_to``, ``closed_by``, ``close_reason``),
sources, files, holders, procedures, steps and audit rows never change; guard triggers refuse the
rest even to owners, and the service role is granted no more than that.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from alembic import context, op
from psycopg import sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

VERSION_COLUMNS = """
        synthetic boolean NOT NULL DEFAULT false,
        action text NOT NULL,
        author text NOT NULL,
        reason text,
        valid_from timestamptz NOT NULL DEFAULT now(),
        valid_to timestamptz,
        closed_by text,
        close_reason text"""

VERSION_GUARD = """
CREATE FUNCTION {table}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION '{table}: % refused, history is never deleted', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.valid_to IS NOT NULL THEN
        RAISE EXCEPTION '{table}: this version is already closed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (to_jsonb(NEW) - ARRAY['valid_to', 'closed_by', 'close_reason'])
       IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['valid_to', 'closed_by', 'close_reason']) THEN
        RAISE EXCEPTION '{table}: a version''s content is immutable; only closing it is allowed'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$"""

APPEND_ONLY = ("rrr_holder", "source_document", "source_file", "tenure_procedure", "procedure_step", "write_audit")


def upgrade() -> None:
    op.execute(f"""
    CREATE TABLE party_version (
        party_id uuid NOT NULL,
        version integer NOT NULL,
        kind text NOT NULL,
        group_type text,
        name text NOT NULL,
        given_names text,
        id_number text,
        contact text,
        members uuid[],
        commune_code text NOT NULL,{VERSION_COLUMNS},
        CONSTRAINT pk_party_version PRIMARY KEY (party_id, version),
        CONSTRAINT fk_party_version_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_party_version_kind CHECK (kind IN ('natural_person', 'group', 'legal_entity')),
        CONSTRAINT ck_party_version_group_type CHECK ((kind = 'group') = (group_type IS NOT NULL)),
        CONSTRAINT ck_party_version_members CHECK (kind = 'group' OR members IS NULL),
        CONSTRAINT ck_party_version_name CHECK (btrim(name) <> ''),
        CONSTRAINT ck_party_version_validity CHECK (valid_to IS NULL OR valid_to >= valid_from)
    )""")
    op.execute("CREATE UNIQUE INDEX uq_party_version_current ON party_version (party_id) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_party_version_commune_code ON party_version (commune_code)")
    op.execute("CREATE INDEX ix_party_version_id_number ON party_version (id_number) WHERE id_number IS NOT NULL")

    op.execute("""
    CREATE TABLE source_document (
        id uuid NOT NULL,
        kind text NOT NULL,
        reference text,
        document_date date NOT NULL,
        authority text,
        council_session text,
        commune_code text NOT NULL,
        description text,
        synthetic boolean NOT NULL DEFAULT false,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_source_document PRIMARY KEY (id),
        CONSTRAINT fk_source_document_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_source_document_kind CHECK (kind IN ('deliberation', 'approbation', 'acte', 'plan',
            'proces_verbal', 'notification', 'decision_justice', 'certificat', 'autre')),
        CONSTRAINT ck_source_document_deliberation CHECK (
            kind <> 'deliberation' OR (reference IS NOT NULL AND council_session IS NOT NULL)),
        CONSTRAINT ck_source_document_approbation CHECK (
            kind <> 'approbation' OR authority IN ('sous_prefet', 'prefet', 'gouverneur'))
    )""")
    op.execute("CREATE INDEX ix_source_document_commune_code ON source_document (commune_code)")
    op.execute("""
    CREATE TABLE source_file (
        id uuid NOT NULL,
        source_id uuid NOT NULL,
        file_name text NOT NULL,
        media_type text NOT NULL,
        size_bytes bigint NOT NULL,
        sha256 text NOT NULL,
        content bytea NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_source_file PRIMARY KEY (id),
        CONSTRAINT fk_source_file_source_id_source_document FOREIGN KEY (source_id) REFERENCES source_document (id),
        CONSTRAINT ck_source_file_sha256 CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        CONSTRAINT ck_source_file_size CHECK (size_bytes = octet_length(content) AND size_bytes > 0),
        CONSTRAINT ck_source_file_media_type CHECK (media_type IN ('application/pdf', 'image/jpeg', 'image/png',
            'image/tiff'))
    )""")
    op.execute("CREATE INDEX ix_source_file_source_id ON source_file (source_id)")

    op.execute("""
    CREATE TABLE tenure_procedure (
        id uuid NOT NULL,
        kind text NOT NULL DEFAULT 'affectation',
        reference text,
        parcel_id uuid NOT NULL,
        commune_code text NOT NULL,
        applicants jsonb NOT NULL,
        purpose text,
        follows_rrr_id uuid,
        synthetic boolean NOT NULL DEFAULT false,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_tenure_procedure PRIMARY KEY (id),
        CONSTRAINT fk_tenure_procedure_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT ck_tenure_procedure_kind CHECK (kind IN ('affectation')),
        CONSTRAINT ck_tenure_procedure_applicants CHECK (jsonb_typeof(applicants) = 'array'
            AND jsonb_array_length(applicants) >= 1)
    )""")
    op.execute("CREATE INDEX ix_tenure_procedure_parcel_id ON tenure_procedure (parcel_id)")
    op.execute("""
    CREATE TABLE procedure_step (
        procedure_id uuid NOT NULL,
        seq integer NOT NULL,
        step text NOT NULL,
        occurred_on date NOT NULL,
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        source_ids uuid[] NOT NULL DEFAULT '{}',
        reason text,
        author text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_procedure_step PRIMARY KEY (procedure_id, seq),
        CONSTRAINT fk_procedure_step_procedure_id_tenure_procedure FOREIGN KEY (procedure_id)
            REFERENCES tenure_procedure (id),
        CONSTRAINT uq_procedure_step_procedure_id_step UNIQUE (procedure_id, step),
        CONSTRAINT ck_procedure_step_step CHECK (step IN ('registered', 'surveyed', 'deliberated', 'approved',
            'notified', 'refused')),
        CONSTRAINT ck_procedure_step_refusal CHECK (step <> 'refused' OR btrim(coalesce(reason, '')) <> '')
    )""")

    op.execute(f"""
    CREATE TABLE rrr_version (
        rrr_id uuid NOT NULL,
        version integer NOT NULL,
        parcel_id uuid NOT NULL,
        commune_code text NOT NULL,
        class text NOT NULL,
        type text NOT NULL,
        tf_number text,
        description text,
        start_date date NOT NULL,
        end_date date,
        end_cause text,
        notice_date date,
        source_ids uuid[] NOT NULL,
        procedure_id uuid,
        predecessor_id uuid,{VERSION_COLUMNS},
        CONSTRAINT pk_rrr_version PRIMARY KEY (rrr_id, version),
        CONSTRAINT fk_rrr_version_commune_code_commune FOREIGN KEY (commune_code) REFERENCES commune (code),
        CONSTRAINT fk_rrr_version_procedure_id_tenure_procedure FOREIGN KEY (procedure_id)
            REFERENCES tenure_procedure (id),
        CONSTRAINT ck_rrr_version_class_type CHECK (
            (class = 'right' AND type IN ('affectation', 'bail', 'titre_foncier', 'droit_superficie', 'occupation'))
            OR (class = 'restriction' AND type IN ('servitude', 'zone_reservee', 'litige'))
            OR (class = 'responsibility' AND type IN ('mise_en_valeur', 'entretien'))),
        CONSTRAINT ck_rrr_version_tf_number CHECK (type <> 'titre_foncier' OR btrim(coalesce(tf_number, '')) <> ''),
        CONSTRAINT ck_rrr_version_affectation_procedure CHECK (type <> 'affectation' OR procedure_id IS NOT NULL),
        CONSTRAINT ck_rrr_version_dates CHECK (end_date IS NULL OR end_date >= start_date),
        CONSTRAINT ck_rrr_version_end_cause CHECK ((end_date IS NULL) = (end_cause IS NULL)),
        CONSTRAINT ck_rrr_version_sources CHECK (cardinality(source_ids) >= 1),
        CONSTRAINT ck_rrr_version_validity CHECK (valid_to IS NULL OR valid_to >= valid_from)
    )""")
    op.execute("CREATE UNIQUE INDEX uq_rrr_version_current ON rrr_version (rrr_id) WHERE valid_to IS NULL")
    op.execute("CREATE UNIQUE INDEX uq_rrr_version_one_affectation ON rrr_version (parcel_id) "
               "WHERE valid_to IS NULL AND type = 'affectation' AND end_date IS NULL")
    op.execute("CREATE INDEX ix_rrr_version_parcel_id ON rrr_version (parcel_id)")
    op.execute("""
    CREATE TABLE rrr_holder (
        rrr_id uuid NOT NULL,
        version integer NOT NULL,
        party_id uuid NOT NULL,
        share_numerator integer NOT NULL,
        share_denominator integer NOT NULL,
        CONSTRAINT pk_rrr_holder PRIMARY KEY (rrr_id, version, party_id),
        CONSTRAINT fk_rrr_holder_rrr_id_rrr_version FOREIGN KEY (rrr_id, version)
            REFERENCES rrr_version (rrr_id, version),
        CONSTRAINT ck_rrr_holder_share CHECK (share_numerator > 0 AND share_denominator > 0
            AND share_numerator <= share_denominator)
    )""")
    op.execute("CREATE INDEX ix_rrr_holder_party_id ON rrr_holder (party_id)")
    # The shares of a right sum to 1 (and a right has a holder): checked when the transaction
    # commits, once the version and all its holders are written.
    op.execute("""
    CREATE FUNCTION rrr_shares_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        total numeric;
        holders integer;
    BEGIN
        SELECT coalesce(sum(share_numerator::numeric / share_denominator), 0), count(*) INTO total, holders
        FROM rrr_holder WHERE rrr_id = NEW.rrr_id AND version = NEW.version;
        IF NEW.class = 'right' AND holders = 0 THEN
            RAISE EXCEPTION 'rrr_version: a right needs at least one holder' USING ERRCODE = 'check_violation';
        END IF;
        IF holders > 0 AND abs(total - 1) > 1e-9 THEN
            RAISE EXCEPTION 'rrr_version: the shares of a right sum to %, not 1', round(total, 6)
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$""")
    op.execute("""
    CREATE CONSTRAINT TRIGGER rrr_shares_sum_to_one AFTER INSERT ON rrr_version
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rrr_shares_check()""")

    op.execute("""
    CREATE TABLE write_audit (
        id bigint GENERATED BY DEFAULT AS IDENTITY,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        actor_kind text NOT NULL,
        actor_id bigint,
        actor text NOT NULL,
        role text NOT NULL,
        operation text NOT NULL,
        object_kind text NOT NULL,
        object_id text NOT NULL,
        parcel_id uuid,
        commune_code text,
        before jsonb,
        after jsonb,
        CONSTRAINT pk_write_audit PRIMARY KEY (id),
        CONSTRAINT ck_write_audit_actor_kind CHECK (actor_kind IN ('user', 'api_key', 'cli')),
        CONSTRAINT ck_write_audit_object CHECK (btrim(object_kind) <> '' AND btrim(object_id) <> '')
    )""")
    op.execute("CREATE INDEX ix_write_audit_object_kind_object_id ON write_audit (object_kind, object_id)")
    op.execute("CREATE INDEX ix_write_audit_parcel_id ON write_audit (parcel_id)")
    op.execute("CREATE INDEX ix_write_audit_occurred_at ON write_audit (occurred_at)")

    for table in ("party_version", "rrr_version"):
        op.execute(VERSION_GUARD.format(table=table))
        op.execute(f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION {table}_guard()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_change()")
    op.execute("""
    CREATE FUNCTION append_only_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '%: append-only (% refused)', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""")
    for table in APPEND_ONLY:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION append_only_guard()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION append_only_guard()")

    role = sql.Identifier(context.config.attributes["service_url"].username)
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    for table in ("party_version", "rrr_version"):
        for statement in ("GRANT SELECT, INSERT ON {} TO {}",
                          "GRANT UPDATE (valid_to, closed_by, close_reason) ON {} TO {}"):
            bind.exec_driver_sql(sql.SQL(statement).format(sql.Identifier(table), role).as_string(raw))
    for table in APPEND_ONLY:
        bind.exec_driver_sql(sql.SQL("GRANT SELECT, INSERT ON {} TO {}")
                             .format(sql.Identifier(table), role).as_string(raw))


def downgrade() -> None:
    for table in (*APPEND_ONLY, "party_version", "rrr_version"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    for table in ("write_audit", "rrr_holder", "rrr_version", "procedure_step", "tenure_procedure", "source_file",
                  "source_document", "party_version"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    for function in ("append_only_guard", "rrr_shares_check", "party_version_guard", "rrr_version_guard"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
