"""The HTTP transport of the client: one keep-alive connection per thread, the
API key on every request, error answers turned into exceptions, and bounded
retries of 429 and 503 that honour ``Retry-After``.

Standard library only (``http.client``), so the package installs anywhere
Python does.
"""

from __future__ import annotations

import http.client
import io
import json
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Mapping

from .errors import ConnectionFailed, ThreadboxError, error_class

USER_AGENT = "threadbox-python/1"

#: Statuses retried on their own: the server refused before doing anything.
RETRYABLE = (429, 503)

Body = bytes | BinaryIO | None


@dataclass
class Response:
    """A whole answer: status, headers (keys lower-cased) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stream:
    """An answer whose body is read as it arrives (``Transport.open``).

    Close it (or use it as a context manager) when done: it holds its own
    connection.
    """

    status: int
    headers: dict[str, str]
    _resp: http.client.HTTPResponse
    _conn: http.client.HTTPConnection = field(repr=False)

    def read(self, n: int = -1) -> bytes:
        return self._resp.read(n)

    def iter_chunks(self, size: int = 256 * 1024) -> Iterator[bytes]:
        while chunk := self._resp.read(size):
            yield chunk

    def iter_lines(self) -> Iterator[bytes]:
        """Lines as they arrive (for line-delimited answers), without their newline."""
        while line := self._resp.readline():
            yield line.rstrip(b"\r\n")

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    """Sends requests to one threadbox server with one API key.

    Thread-safe: each thread keeps its own keep-alive connection.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8080`` (a path prefix is kept).
        api_key: sent as ``Authorization: Bearer``.
        timeout: seconds a request may wait for the server, by default.
        max_retries: how many times a 429 or 503 answer is retried (0: never).
        max_retry_wait: the longest single wait between retries, in seconds; a
            ``Retry-After`` beyond it is waited only this long.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 330.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
    ) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._scheme = u.scheme
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path.rstrip("/")
        self.base_url = f"{u.scheme}://{u.netloc}{self._prefix}"
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._local = threading.local()

    # -- connections -------------------------------------------------------

    def _new_conn(self, timeout: float) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _conn(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_conn(timeout)
            self._local.conn = conn
            return conn, False
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        conn.timeout = timeout
        return conn, True

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._drop_conn()

    # -- requests ----------------------------------------------------------

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """The request target for path (which starts with /) and query."""
        target = self._prefix + path
        if query:
            pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
            if pairs:
                target += "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        return target

    def _headers(self, extra: Mapping[str, str] | None, json_body: bool) -> dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept": "application/json, */*"}
        if self._api_key:
            h["Authorization"] = "Bearer " + self._api_key
        if json_body:
            h["Content-Type"] = "application/json"
        if extra:
            h.update(extra)
        return h

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Response:
        """Send one request and return the whole answer.

        A status outside ``ok`` raises the matching ``ThreadboxError``. 429 and
        503 are retried (``max_retries`` times, waiting ``Retry-After``) when the
        body can be sent again (bytes, or a seekable file).
        """
        if json_body is not None:
            body = json.dumps(json_body).encode()
        target = self.url(path, query)
        hdrs = self._headers(headers, json_body is not None)
        timeout = self.timeout if timeout is None else timeout
        start = body.tell() if _seekable(body) else None
        attempt = 0
        while True:
            resp = self._send(method, target, body, hdrs, timeout)
            if resp.status in ok:
                return resp
            replayable = body is None or isinstance(body, bytes) or start is not None
            if resp.status in RETRYABLE and attempt < self.max_retries and replayable:
                attempt += 1
                time.sleep(self._wait(resp, attempt))
                if start is not None:
                    body.seek(start)  # type: ignore[union-attr]
                continue
            raise self.error(method, resp)

    def _wait(self, resp: Response, attempt: int) -> float:
        ra = _retry_after(resp.headers)
        if ra is None:
            ra = min(0.5 * 2 ** (attempt - 1), 8.0) * (1 + random.random() / 4)
        return min(ra, self.max_retry_wait)

    def _send(self, method: str, target: str, body: Body, headers: dict[str, str], timeout: float) -> Response:
        for fresh_try in (False, True):
            conn, reused = self._conn(timeout)
            try:
                conn.request(method, target, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
                if r.will_close:
                    self._drop_conn()
                return resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._drop_conn()
                # A kept-alive connection the server closed while idle: the
                # request never reached it, so it is sent once more on a new one.
                if reused and not fresh_try and (body is None or isinstance(body, bytes)):
                    continue
                raise ConnectionFailed(0, "connection_failed", f"{method} {target}: {e}") from e
            except (OSError, http.client.HTTPException) as e:
                self._drop_conn()
                raise ConnectionFailed(0, "connection_failed", f"{method} {target}: {e}") from e
        raise AssertionError("unreachable")

    def open(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Stream:
        """Send one request and return the answer to be read as it arrives.

        For large downloads and for answers produced over time (line-delimited
        streams). The stream has its own connection; close it. Errors raise as
        for ``request``; 429 and 503 are retried the same way.
        """
        body = json.dumps(json_body).encode() if json_body is not None else None
        target = self.url(path, query)
        hdrs = self._headers(headers, json_body is not None)
        attempt = 0
        while True:
            conn = self._new_conn(self.timeout if timeout is None else timeout)
            try:
                conn.request(method, target, body=body, headers=hdrs)
                r = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise ConnectionFailed(0, "connection_failed", f"{method} {target}: {e}") from e
            headers_ = {k.lower(): v for k, v in r.getheaders()}
            if r.status in ok:
                return Stream(r.status, headers_, r, conn)
            resp = Response(r.status, headers_, r.read())
            conn.close()
            if resp.status in RETRYABLE and attempt < self.max_retries:
                attempt += 1
                time.sleep(self._wait(resp, attempt))
                continue
            raise self.error(method, resp)

    @staticmethod
    def error(method: str, resp: Response) -> ThreadboxError:
        """The exception for an error answer."""
        code, message = "", ""
        try:
            e = json.loads(resp.body)["error"]
            code, message = str(e["code"]), str(e["message"])
        except (ValueError, KeyError, TypeError):
            pass
        if not code:  # HEAD answers carry no body
            reason = http.client.responses.get(resp.status, "error")
            code = reason.lower().replace(" ", "_").replace("-", "_")
            message = resp.body.decode(errors="replace").strip() or reason
        return error_class(resp.status)(
            resp.status,
            code,
            message,
            retry_after=_retry_after(resp.headers),
            request_id=resp.headers.get("x-request-id"),
        )


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _seekable(body: Body) -> bool:
    if body is None or isinstance(body, bytes):
        return False
    try:
        return isinstance(body, io.IOBase) and body.seekable()
    except (AttributeError, ValueError):
        return False


def _retry_after(headers: Mapping[str, str]) -> float | None:
    v = headers.get("retry-after")
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None  # an HTTP date: not sent by threadbox
