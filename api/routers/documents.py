"""Issue 10 (documents): routes added by the work in progress."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
