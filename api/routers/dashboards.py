"""Issue 10 (dashboards): routes added by the work in progress."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
