// ReDoc of /redoc, started from a file rather than an inline script (see docs/security-headers.md).
Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
