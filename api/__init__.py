"""HTTP layer of the SIFC: a thin FastAPI shell over ``sifc``."""

from api.app import create_app

__all__ = ["create_app"]
