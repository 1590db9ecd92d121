"""Accounts, roles, commune scopes, tokens, API keys and the access audit.

- :mod:`sifc.auth.principal`: who is calling (:class:`Principal`), roles, actions, :func:`require`;
- :mod:`sifc.auth.passwords`: argon2id hashing;
- :mod:`sifc.auth.users`: accounts, sign-in with lockout, scopes;
- :mod:`sifc.auth.tokens`: JWT access tokens and rotating refresh tokens;
- :mod:`sifc.auth.keys`: API keys of municipal apps;
- :mod:`sifc.auth.audit`: the append-only log of who read personal data;
- :mod:`sifc.auth.ratelimit`: in-process token buckets.

Nothing here knows HTTP; ``api/deps.py`` and ``api/routers/auth.py`` put it on the wire.
"""
