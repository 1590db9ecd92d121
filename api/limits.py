"""Rate limits on the heavy endpoints (exports, import uploads), per client.

A client is its API key or account when it is signed in, else its address (behind the proxy, the
address the proxy forwarded). Buckets live in the process: one API worker, as ``sifc serve`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from api.deps import PrincipalDep, SettingsDep
from sifc.auth.ratelimit import TokenBucket
from sifc.errors import TooManyRequests
from sifc.settings import Settings


def rate_limited(name: str, per_minute: Callable[[Settings], int], message_key: str) -> Any:
    """A dependency allowing ``per_minute(settings)`` requests per client as a burst refilled evenly."""

    def limit(request: Request, settings: SettingsDep, principal: PrincipalDep) -> None:
        attribute = f"{name}_limiter"
        bucket = getattr(request.app.state, attribute, None)
        if bucket is None:
            rate = per_minute(settings)
            bucket = TokenBucket(rate, rate / 60)
            setattr(request.app.state, attribute, bucket)
        client = (f"{principal.kind}:{principal.id}" if principal.authenticated
                  else f"ip:{request.client.host if request.client else 'unknown'}")
        wait = bucket.take(client)
        if wait:
            raise TooManyRequests(message_key, retry_after=wait)

    return Depends(limit)


# The anonymous heavy questions (docs/limits.md): each scans a commune or more, or a posted geometry.
# The exports, documents (PDF) and dashboard images share the exports' bucket; items, point lookups
# and tiles are never limited.
AnalysisRateLimited = rate_limited("analysis", lambda settings: settings.analysis_rate_per_minute,
                                   "analysis.rate_limited")
