"""Studies: search by real UID or pseudonym, a study's timeline and lineage graph, and
previews of its de-identified images (never of identified ones).

A real UID is pseudonymised here with the project key, in the Study, Series and SOP Instance
namespaces, before anything is looked up; it is never stored, logged or put in a URL: the
study page's address is the pseudonym. Only values shaped like a UID or a pseudonym are
accepted (``ledger.history`` reads a server file when given a path).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from radledger.api.auth import Context
from radledger.api.writes import UID_PATTERN
from radledger.core.pseudonym import pseudonym
from radledger.dicom.thumbnail import thumbnail_png
from radledger.errors import DicomError, InputError, NotFound, NotRegistered, PermissionDenied
from radledger.ledger.history import history
from radledger.ledger.tokens import Permission
from radledger.storage.base import LedgerStore
from radledger.web.describe import describe, is_deidentified, may_preview, parse
from radledger.web.lineage import lay_out
from radledger.web.releases import MAX_UID
from radledger.web.render import PREFIX, SECURITY_HEADERS, WebRoute, page, redirect
from radledger.web.session import Needs, WebUser

router = APIRouter(route_class=WebRoute, include_in_schema=False)
Reader = Annotated[WebUser, Depends(Needs(Permission.READ))]
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UID = re.compile(UID_PATTERN)
_NAMESPACES = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
MAX_PREVIEWS = 24
RECENT_SCAN = 2000
RECENT_STUDIES = 10


class NotAUid(InputError):
    """A search that is neither a UID nor a pseudonym."""


def candidates(project_key: bytes, query: str) -> list[str]:
    """The pseudonyms a search may mean. Raises NotAUid for anything else, or for a value
    that also names a file on this server (it would be read as one)."""
    value = query.strip().lower() if HEX64.match(query.strip().lower()) else query.strip()
    if os.path.lexists(value) or not (HEX64.match(value) or (_UID.match(value)
                                                               and len(value) <= MAX_UID)):
        raise NotAUid("search with a Study, Series or SOP Instance UID (digits and dots) or "
                      "a pseudonym (64 hex digits)")
    if HEX64.match(value):
        return [value]
    return [pseudonym(project_key, namespace, value) for namespace in _NAMESPACES]


def recent_studies(store: LedgerStore) -> list[tuple[str, int, int]]:
    """(study pseudonym, entries seen, latest index) of the studies of the latest entries."""
    size = store.entry_count()
    seen: Counter[str] = Counter()
    latest: dict[str, int] = {}
    for index, _, _, data in store.entries(max(0, size - RECENT_SCAN), size):
        study = parse(data).get("subject", {}).get("study")
        if isinstance(study, str) and HEX64.match(study):
            seen[study] += 1
            latest[study] = index
    ordered = sorted(latest, key=latest.__getitem__, reverse=True)[:RECENT_STUDIES]
    return [(s, seen[s], latest[s]) for s in ordered]


@router.get(f"{PREFIX}/studies")
def studies(request: Request, ctx: Context, user: Reader) -> Response:
    """The search form and the latest studies."""
    return _studies_page(request, ctx, user)


@router.post(f"{PREFIX}/studies")
def search(request: Request, ctx: Context, user: Reader,
           q: Annotated[str, Form(max_length=200)] = "") -> Response:
    """A search that finds something goes to it. The UID travels in the form body, never in
    an address, so it reaches no access log or browser history (RELIABILITY 27)."""
    problem, status = None, 200
    if q.strip():
        try:
            keys = candidates(ctx.home.project_key, q)
            with ctx.writing() as space:
                for key in keys:
                    try:
                        history(space, key, files=False)
                    except NotRegistered:
                        continue
                    return redirect(f"{PREFIX}/studies/{key}")
            problem, status = "Nothing in this ledger is about that UID or pseudonym.", 404
        except NotAUid as exc:
            problem, status = str(exc), 422
    return _studies_page(request, ctx, user, problem, status)


def _studies_page(request: Request, ctx: Context, user: Reader, problem: str | None = None,
                  status: int = 200) -> Response:
    with ctx.reads.store() as store:
        recent = recent_studies(store)
    return page(request, user, "studies.html", title="Studies", recent=recent, problem=problem,
                status=status)


@router.get(f"{PREFIX}/studies/{{key}}")
def study(request: Request, ctx: Context, user: Reader, key: str) -> HTMLResponse:
    """Every entry about the study, series or instance ``key`` (a pseudonym): its timeline,
    its lineage graph, and previews of its de-identified images."""
    if not HEX64.match(key):
        raise NotFound("a study page's address is a pseudonym (64 hex digits)")
    with ctx.writing() as space:
        found, truncated = history(space, key, files=False)
        entries = [(index, parse(data)) for index, data in found]
        previewable = [i for i, e in entries if may_preview(e)]
        on_disk = set(space.side.paths_of(previewable)) if previewable else set()
    timeline = [describe(i, e) for i, e in entries if e.get("kind") != "access.recorded"]
    stages = Counter(d.stage for d in timeline)
    previews = [i for i in previewable if i in on_disk]
    identified = sum(1 for _, e in entries
                     if e.get("kind") == "instance.registered" and not is_deidentified(e))
    return page(request, user, "study.html", title=f"Study {key[:12]}…", key=key,
                timeline=timeline, truncated=truncated, lineage=lay_out(entries),
                stages=sorted(stages.items()), previews=previews[:MAX_PREVIEWS],
                more_previews=max(0, len(previews) - MAX_PREVIEWS), identified=identified)


@router.get(f"{PREFIX}/thumbnails/{{index}}.png")
async def thumbnail(ctx: Context, _: Reader, index: int) -> Response:
    """A small PNG of a de-identified image; 403 for an identified image or one held for
    burned-in annotation review, 404 when its file is not known or no longer there."""
    def render() -> bytes:
        with ctx.writing() as space:
            row = space.ledger.store.entry(index) if index >= 0 else None
            entry: dict[str, Any] = parse(row[1]) if row else {}
            if entry.get("kind") != "instance.registered":
                raise NotFound(f"entry {index} is not a registered image")
            if not may_preview(entry):
                raise PermissionDenied("identified images (and images held for burned-in "
                                       "annotation review) are never previewed")
            path = space.side.paths_of([index]).get(index)
        if path is None:
            raise NotFound(f"this server does not know where the file of entry {index} is")
        try:
            return thumbnail_png(Path(path), str(entry["body"]["file_sha256"]))
        except DicomError:
            # not the registered file, gone, or not decodable; the reason names a server
            # path, which is not shown
            raise NotFound(f"no preview of entry {index}: the file is missing, changed, or "
                           "has no image this server can decode") from None

    png = await run_in_threadpool(render)
    headers = dict(SECURITY_HEADERS, **{"Cache-Control": "private, max-age=3600"})
    return Response(png, media_type="image/png", headers=headers)
