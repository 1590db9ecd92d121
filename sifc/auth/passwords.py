"""Password hashing with argon2id (RFC 9106), via argon2-cffi's recommended parameters."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sifc.errors import InvalidInput

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so that a wrong username costs as much as a wrong password.

    Made on a process's first check, not at import: a hash costs about 0.2 s and 64 MiB, which a
    process that never checks a password (a command, the import worker) need not pay.
    """
    return _hasher.hash("sifc-no-such-user")


def hash_password(password: str, *, check_length: bool = True) -> str:
    """An argon2id hash of ``password`` (salted; PHC string format)."""
    if check_length and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("auth.weak_password", length=MIN_PASSWORD_LENGTH)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (``None``: burn the same time, answer no)."""
    dummy = _dummy_hash()  # made before either answer: a known username's first check costs the same
    try:
        return _hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
