"""Talking to an Orthanc server's REST API: a small client the follower is given.

The follower needs two calls, ``get_json`` and ``download``; anything with them (the
``OrthancClient`` protocol) will do, so tests can hand it a fake or a real server alike.
``HttpOrthanc`` is the real one, on the standard library's urllib.

Credentials are sent as HTTP Basic authentication and kept in one private attribute: they are
never part of ``url``, of an error message or of anything recorded. A URL carrying
credentials (``http://user:pw@host``) is refused rather than cleaned, since it has then
already been typed where it may be logged. Redirects are refused too, so the credentials
never follow one to another host.

Errors (in ``radledger.errors``): OrthancError when Orthanc answers but not as expected,
OrthancUnreachable when it does not answer, OrthancAuthError when it refuses the credentials.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Protocol

from radledger.core.jcs import JSONValue
from radledger.errors import InputError, OrthancAuthError, OrthancError, OrthancUnreachable

TIMEOUT_S = 30.0
_CHUNK = 1 << 20
_MAX_JSON = 64 << 20  # a page of /changes is a few kB; refuse a server that sends gigabytes


class OrthancClient(Protocol):
    """What the follower asks of an Orthanc server."""

    @property
    def url(self) -> str:
        """The server's base URL, without credentials (what the ledger records)."""
        ...

    def get_json(self, path: str) -> JSONValue | None:
        """GET ``path`` (starting with ``/``) as JSON; None if Orthanc answers 404."""
        ...

    def download(self, path: str, into: IO[bytes]) -> bool:
        """Write the body of GET ``path`` to ``into``; False if Orthanc answers 404."""
        ...


def server_url(url: str) -> str:
    """The normalised base URL of an Orthanc server: http(s), scheme and host lower case,
    no trailing slash. A path prefix (Orthanc behind a reverse proxy) is kept.

    Raises InputError for another scheme, a missing host, a query or fragment, or
    credentials in the URL (the message does not repeat the URL, which may hold them).
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.username is not None or parts.password is not None:
        raise InputError("the Orthanc URL carries credentials; give them with --user and "
                         "--password (or RADLEDGER_ORTHANC_PASSWORD) instead")
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InputError(f"--url must be an http(s) URL with a host, such as "
                         f"http://127.0.0.1:8042; got {url[:80]!r}")
    if parts.query or parts.fragment:
        raise InputError(f"--url must not have a query or fragment; got {url[:80]!r}")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0913, PLR0917 - urllib's signature
            self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
            headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
        return None  # the HTTPError then reaches _open, which names the status


class HttpOrthanc:
    """An Orthanc REST API over HTTP(S), with Basic authentication if a user is given."""

    def __init__(self, url: str, user: str | None = None, password: str | None = None,
                 timeout: float = TIMEOUT_S) -> None:
        """Raises InputError for an unusable URL or user name."""
        self._url = server_url(url)
        self.timeout = timeout
        self._authorization: str | None = None
        if user:
            if ":" in user:
                raise InputError("an Orthanc user name cannot contain ':' (HTTP Basic)")
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
            self._authorization = "Basic " + token
        self._user = user
        self._opener = urllib.request.build_opener(_NoRedirect)

    @property
    def url(self) -> str:
        """The server's base URL, without credentials."""
        return self._url

    def __repr__(self) -> str:  # never the credentials
        return f"HttpOrthanc({self._url!r}, user={self._user!r})"

    def get_json(self, path: str) -> JSONValue | None:
        """GET ``path`` as JSON; None on 404. Raises an OrthancError."""
        response = self._open(path)
        if response is None:
            return None
        with response:
            data = self._read(path, response, _MAX_JSON + 1)
        if len(data) > _MAX_JSON:
            raise OrthancError(f"Orthanc at {self._url} sent over {_MAX_JSON} bytes of "
                               f"JSON for GET {path}")
        try:
            value: JSONValue = json.loads(data)
        except ValueError:
            raise OrthancError(f"Orthanc at {self._url} answered GET {path} with something "
                               "other than JSON; is this an Orthanc server?") from None
        return value

    def download(self, path: str, into: IO[bytes]) -> bool:
        """Stream the body of GET ``path`` into ``into``; False on 404."""
        response = self._open(path)
        if response is None:
            return False
        with response:
            while chunk := self._read(path, response, _CHUNK):
                into.write(chunk)
        return True

    def _open(self, path: str) -> http.client.HTTPResponse | None:
        request = urllib.request.Request(self._url + path)
        if self._authorization is not None:
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            response: http.client.HTTPResponse = self._opener.open(
                request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == http.HTTPStatus.NOT_FOUND:
                return None
            if exc.code in {http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.FORBIDDEN}:
                who = f"user {self._user!r}" if self._user else "no user (give --user)"
                raise OrthancAuthError(f"Orthanc at {self._url} refused the credentials "
                                       f"of {who} (HTTP {exc.code})") from None
            raise OrthancError(f"Orthanc at {self._url} answered HTTP {exc.code} to GET "
                               f"{path}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise OrthancUnreachable(f"cannot reach Orthanc at {self._url}: "
                                     f"{_reason(exc)}") from None
        return response

    def _read(self, path: str, response: http.client.HTTPResponse, size: int) -> bytes:
        try:
            return response.read(size)
        except (OSError, http.client.HTTPException) as exc:
            raise OrthancUnreachable(f"Orthanc at {self._url} stopped answering during GET "
                                     f"{path}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return str(text)[:200]
