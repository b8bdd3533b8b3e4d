"""The web UI (issue 6): server-rendered pages over the same ledger services as the CLI and
the API, served by the API's app under ``/ui/``.

``install_web(app)`` adds the pages and their static files to an app made by
``radledger.api.create_app``; the pages use its ``ApiContext`` (ledger, read connections,
tokens, the one writer). Modules: ``session`` (login cookie, roles, CSRF), ``render`` (pages,
errors as pages), ``access`` (access.recorded for the web), one ``pages_*`` module per area,
and what they show: ``status`` (dashboard), ``describe`` (entry wording), ``lineage`` (the
graph), ``releases`` (bundles and their verification).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from radledger.web import (
    pages_admin,
    pages_entries,
    pages_home,
    pages_releases,
    pages_reviewer,
    pages_studies,
)
from radledger.web.render import PREFIX
from radledger.web.session import WebSecrets

__all__ = ["UPLOAD_PATHS", "install_web"]

STATIC = Path(__file__).parent / "static"
# form posts that carry files, with the body limit each gets (the app's default is 1 MiB)
UPLOAD_PATHS = {f"{PREFIX}/reviewer": 256 << 20, f"{PREFIX}/consent": 1 << 20}


def install_web(app: FastAPI, csrf_key: bytes | None = None) -> None:
    """Add the web UI's pages and static files to ``app`` (``csrf_key``: shared by the
    processes serving together; default a random one)."""
    app.state.radledger_web = WebSecrets() if csrf_key is None else WebSecrets(csrf_key)
    for module in (pages_home, pages_studies, pages_entries, pages_releases, pages_reviewer,
                   pages_admin):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="web-static")
