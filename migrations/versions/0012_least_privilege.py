"""Least privilege for the service role: accounts and role changes through their own path

The service role held more than the service does. It could ``UPDATE app_user`` (anyone's role,
password hash or state), add accounts, scopes and API keys of any role, and close any current
version of a parcel, party or right in any name (``closed_by``), at any date. Now:

- **Accounts and API keys** change only through the functions below (``SECURITY DEFINER``, owned by
  the migrating owner, ``search_path`` fixed, ``EXECUTE`` revoked from ``PUBLIC`` and never granted
  to the service role): only the owner's login calls them, that is the command line on the owner's
  URL (``sifc users …``, ``sifc keys …``). The service role cannot call them at all: who asks is a
  parameter (``actor_id``) its caller chooses, so a service login that could call them could act in
  any administrator's name. Each still checks who asks, as defence in depth for a future admin
  path: the database owner (``session_user`` may act as the function's owner), or an account named
  by ``actor_id`` that is an active, unlocked administrateur whose scope covers every commune of the
  account or key it changes. Each writes its own row in the write journal, so no account changes
  without a trace. The service role keeps what sign-in needs: ``UPDATE (failed_attempts,
  locked_until, last_login_at)`` on ``app_user`` and ``UPDATE (last_used_at)`` on ``api_key``. It
  no longer rewrites password hashes.
- **Closing a version** (``parcel_version``, ``party_version``, ``rrr_version``) is refused unless
  ``closed_by`` is the transaction's declared actor (``sifc.actor``, declared by the service where
  the caller becomes known: the API once it authenticated the request, a command with its
  operator, the worker with the job's submitter) and ``valid_to`` is the transaction's time. This
  holds for every role, owner included. It is a consistency guard against the service's own bugs
  (a version closed in the wrong name or at the wrong time), not a defence against a compromised
  service login: any role may set ``sifc.actor`` itself before closing a version.
- **Import jobs**: the service updates a job's progress and outcome, no longer what was asked and by
  whom (``created_by`` is the author the worker writes in, ``upload_path`` the file it reads).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from alembic import context, op
from psycopg import sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

VERSIONED = ("parcel_version", "party_version", "rrr_version")

# What 0003 and 0006 granted and this migration takes back (restored by the downgrade).
REVOKED = (
    "INSERT ON app_user",
    "UPDATE (password_hash, role, active) ON app_user",
    "INSERT, DELETE ON app_user_scope",
    "INSERT ON api_key",
    "UPDATE (revoked_at) ON api_key",
    "INSERT ON api_key_scope",
)
IMPORT_JOB_PROGRESS = ("status", "stage", "progress_done", "progress_total", "attempts", "worker", "error",
                       "report", "issues_gz", "rejects_gpkg", "batch_id", "started_at", "updated_at",
                       "finished_at")

# The account functions: the owner's alone, like their helpers (the service role may not execute them).
ACCOUNT_FUNCTIONS = (
    "sifc_create_user(bigint, text, text, text, text, text[], text[])",
    "sifc_set_user_role(bigint, text, bigint, text, text[], text[])",
    "sifc_set_user_active(bigint, text, bigint, boolean)",
    "sifc_create_api_key(bigint, text, text, text, text, text, timestamptz, text[], text[])",
    "sifc_revoke_api_key(bigint, text, text)",
)
HELPERS = (
    "sifc_account_actor(bigint, text[], text[])",
    "sifc_account_journal(bigint, text, text, text, text, bigint, jsonb, jsonb)",
)

ACTOR = r"""
CREATE FUNCTION sifc_account_actor(p_actor_id bigint, p_levels text[], p_codes text[]) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
-- Who asks for an account change: NULL for the database owner, else the administrator's username.
-- The scope rows (p_levels, p_codes) are those of the account or key changed, before and after.
DECLARE
    who record;
BEGIN
    IF p_actor_id IS NULL THEN
        IF pg_has_role(session_user, current_user, 'MEMBER') THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'accounts: only an administrator, or the database owner, changes accounts'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT id, username, role, active, locked_until INTO who FROM app_user WHERE id = p_actor_id;
    IF NOT FOUND OR who.role <> 'administrateur' OR NOT who.active
       OR (who.locked_until IS NOT NULL AND who.locked_until > now()) THEN
        RAISE EXCEPTION 'accounts: account % is not an active administrator', p_actor_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM app_user_scope WHERE user_id = p_actor_id AND level = 'country')
       AND (EXISTS (SELECT 1 FROM unnest(p_levels) AS l(level) WHERE l.level = 'country')
            OR EXISTS (SELECT 1 FROM unnest(p_levels, p_codes) AS s(level, code)
                       CROSS JOIN LATERAL scope_communes(s.level, s.code) AS c(code)
                       WHERE NOT EXISTS (SELECT 1 FROM app_user_commune a
                                         WHERE a.user_id = p_actor_id AND a.commune_code = c.code))) THEN
        RAISE EXCEPTION 'accounts: outside the scope of administrator %', p_actor_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN who.username;
END $$"""

JOURNAL = r"""
CREATE FUNCTION sifc_account_journal(p_actor_id bigint, p_actor text, p_author text, p_operation text,
                                     p_kind text, p_id bigint, p_before jsonb, p_after jsonb) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO write_audit (actor_kind, actor_id, actor, role, operation, object_kind, object_id, before, after)
    VALUES (CASE WHEN p_actor IS NULL THEN 'cli' ELSE 'user' END, CASE WHEN p_actor IS NULL THEN NULL ELSE p_actor_id END,
            coalesce(p_actor, nullif(btrim(p_author), ''), 'cli'), 'administrateur', p_operation, p_kind,
            p_id::text, p_before, p_after)
$$"""

CREATE_USER = r"""
CREATE FUNCTION sifc_create_user(p_actor_id bigint, p_author text, p_username text, p_password_hash text,
                                 p_role text, p_levels text[], p_codes text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor text := sifc_account_actor(p_actor_id, p_levels, p_codes);
    new_id bigint;
BEGIN
    INSERT INTO app_user (username, password_hash, role, created_by)
    VALUES (p_username, p_password_hash, p_role, coalesce(actor, p_author)) RETURNING id INTO new_id;
    INSERT INTO app_user_scope (user_id, level, code)
    SELECT new_id, s.level, s.code FROM unnest(p_levels, p_codes) AS s(level, code);
    PERFORM sifc_account_journal(p_actor_id, actor, p_author, 'account.create', 'app_user', new_id, NULL,
        jsonb_build_object('username', p_username, 'role', p_role, 'scope',
            (SELECT coalesce(jsonb_agg(level || ':' || code ORDER BY level, code), '[]'::jsonb)
             FROM app_user_scope WHERE user_id = new_id)));
    RETURN new_id;
END $$"""

SET_ROLE = r"""
CREATE FUNCTION sifc_set_user_role(p_actor_id bigint, p_author text, p_user_id bigint, p_role text,
                                   p_levels text[] DEFAULT NULL, p_codes text[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
-- A new role, and a new scope when one is given (NULL keeps the scope).
DECLARE
    actor text;
    old_role text;
    old_scope jsonb := (SELECT coalesce(jsonb_agg(level || ':' || code ORDER BY level, code), '[]'::jsonb)
                        FROM app_user_scope WHERE user_id = p_user_id);
BEGIN
    SELECT role INTO old_role FROM app_user WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'accounts: no account %', p_user_id USING ERRCODE = 'no_data_found';
    END IF;
    actor := sifc_account_actor(p_actor_id,
        ARRAY(SELECT level FROM app_user_scope WHERE user_id = p_user_id ORDER BY level, code)
            || coalesce(p_levels, '{}'),
        ARRAY(SELECT code FROM app_user_scope WHERE user_id = p_user_id ORDER BY level, code)
            || coalesce(p_codes, '{}'));
    UPDATE app_user SET role = p_role WHERE id = p_user_id;
    IF p_levels IS NOT NULL THEN
        DELETE FROM app_user_scope WHERE user_id = p_user_id;
        INSERT INTO app_user_scope (user_id, level, code)
        SELECT p_user_id, s.level, s.code FROM unnest(p_levels, p_codes) AS s(level, code);
    END IF;
    PERFORM sifc_account_journal(p_actor_id, actor, p_author, 'account.role', 'app_user', p_user_id,
        jsonb_build_object('role', old_role, 'scope', old_scope),
        jsonb_build_object('role', p_role, 'scope',
            (SELECT coalesce(jsonb_agg(level || ':' || code ORDER BY level, code), '[]'::jsonb)
             FROM app_user_scope WHERE user_id = p_user_id)));
END $$"""

SET_ACTIVE = r"""
CREATE FUNCTION sifc_set_user_active(p_actor_id bigint, p_author text, p_user_id bigint, p_active boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
-- Disabling also ends the account's sessions; enabling also lifts a lockout.
DECLARE
    actor text;
    was boolean;
BEGIN
    SELECT active INTO was FROM app_user WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'accounts: no account %', p_user_id USING ERRCODE = 'no_data_found';
    END IF;
    actor := sifc_account_actor(p_actor_id,
        ARRAY(SELECT level FROM app_user_scope WHERE user_id = p_user_id ORDER BY level, code),
        ARRAY(SELECT code FROM app_user_scope WHERE user_id = p_user_id ORDER BY level, code));
    IF p_active THEN
        UPDATE app_user SET active = true, failed_attempts = 0, locked_until = NULL WHERE id = p_user_id;
    ELSE
        UPDATE app_user SET active = false WHERE id = p_user_id;
        UPDATE refresh_token SET revoked_at = now() WHERE user_id = p_user_id AND revoked_at IS NULL;
    END IF;
    PERFORM sifc_account_journal(p_actor_id, actor, p_author,
        CASE WHEN p_active THEN 'account.enable' ELSE 'account.disable' END, 'app_user', p_user_id,
        jsonb_build_object('active', was), jsonb_build_object('active', p_active));
END $$"""

CREATE_KEY = r"""
CREATE FUNCTION sifc_create_api_key(p_actor_id bigint, p_author text, p_prefix text, p_secret_hash text,
                                    p_name text, p_role text, p_expires_at timestamptz, p_levels text[],
                                    p_codes text[]) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    actor text := sifc_account_actor(p_actor_id, p_levels, p_codes);
    new_id bigint;
BEGIN
    INSERT INTO api_key (prefix, secret_hash, name, role, created_by, expires_at)
    VALUES (p_prefix, p_secret_hash, p_name, p_role, coalesce(actor, p_author), p_expires_at) RETURNING id INTO new_id;
    INSERT INTO api_key_scope (key_id, level, code)
    SELECT new_id, s.level, s.code FROM unnest(p_levels, p_codes) AS s(level, code);
    PERFORM sifc_account_journal(p_actor_id, actor, p_author, 'api_key.create', 'api_key', new_id, NULL,
        jsonb_build_object('prefix', p_prefix, 'name', p_name, 'role', p_role, 'scope',
            (SELECT coalesce(jsonb_agg(level || ':' || code ORDER BY level, code), '[]'::jsonb)
             FROM api_key_scope WHERE key_id = new_id),
                           'expires_at', p_expires_at));
    RETURN new_id;
END $$"""

REVOKE_KEY = r"""
CREATE FUNCTION sifc_revoke_api_key(p_actor_id bigint, p_author text, p_prefix text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
-- The key's id (NULL: no such key); revoking twice keeps the first date.
DECLARE
    actor text;
    found_id bigint;
    revoked timestamptz;
BEGIN
    SELECT id INTO found_id FROM api_key WHERE prefix = p_prefix FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    actor := sifc_account_actor(p_actor_id,
        ARRAY(SELECT level FROM api_key_scope WHERE key_id = found_id ORDER BY level, code),
        ARRAY(SELECT code FROM api_key_scope WHERE key_id = found_id ORDER BY level, code));
    UPDATE api_key SET revoked_at = coalesce(revoked_at, now()) WHERE id = found_id RETURNING revoked_at INTO revoked;
    PERFORM sifc_account_journal(p_actor_id, actor, p_author, 'api_key.revoke', 'api_key', found_id, NULL,
        jsonb_build_object('prefix', p_prefix, 'revoked_at', revoked));
    RETURN found_id;
END $$"""

# Only closing is allowed on a version (guards of 0002 and 0007); this says by whom and when.
CLOSER_GUARD = r"""
CREATE FUNCTION version_closer_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    actor text := nullif(current_setting('sifc.actor', true), '');
BEGIN
    IF OLD.valid_to IS NULL AND NEW.valid_to IS NOT NULL THEN
        IF actor IS NULL OR NEW.closed_by IS DISTINCT FROM actor THEN
            RAISE EXCEPTION '%: a version is closed in the name of the transaction''s actor (sifc.actor), not %',
                TG_TABLE_NAME, coalesce(NEW.closed_by, 'NULL') USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.valid_to <> now() THEN
            RAISE EXCEPTION '%: a version is closed at the time of the transaction that closes it', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END $$"""


def _execute(statement: str, *identifiers: str) -> None:
    bind = op.get_bind()
    raw = bind.connection.dbapi_connection
    bind.exec_driver_sql(sql.SQL(statement).format(*(sql.Identifier(i) for i in identifiers)).as_string(raw))


def _service_role() -> str:
    return str(context.config.attributes["service_url"].username)


def upgrade() -> None:
    role = _service_role()
    owner = op.get_bind().exec_driver_sql("SELECT current_user").scalar()
    for function in (ACTOR, JOURNAL, CREATE_USER, SET_ROLE, SET_ACTIVE, CREATE_KEY, REVOKE_KEY, CLOSER_GUARD):
        op.execute(function)
    for signature in (*ACCOUNT_FUNCTIONS, *HELPERS):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for table in VERSIONED:
        op.execute(f"CREATE TRIGGER {table}_closer BEFORE UPDATE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION version_closer_guard()")
    if role == owner:  # a database owner serving as itself: nothing to take from it
        return
    for signature in (*ACCOUNT_FUNCTIONS, *HELPERS):  # whatever default privileges gave it
        _execute(f"REVOKE ALL ON FUNCTION {signature} FROM {{}}", role)
    for privilege in REVOKED:
        _execute(f"REVOKE {privilege} FROM {{}}", role)
    _execute("REVOKE UPDATE ON import_job FROM {}", role)
    _execute(f"GRANT UPDATE ({', '.join(IMPORT_JOB_PROGRESS)}) ON import_job TO {{}}", role)


def downgrade() -> None:
    role = _service_role()
    owner = op.get_bind().exec_driver_sql("SELECT current_user").scalar()
    if role != owner:
        _execute(f"REVOKE UPDATE ({', '.join(IMPORT_JOB_PROGRESS)}) ON import_job FROM {{}}", role)
        _execute("GRANT UPDATE ON import_job TO {}", role)
        for privilege in REVOKED:
            _execute(f"GRANT {privilege} TO {{}}", role)
    for table in VERSIONED:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_closer ON {table}")
    op.execute("DROP FUNCTION IF EXISTS version_closer_guard()")
    for signature in (*ACCOUNT_FUNCTIONS, *HELPERS):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
