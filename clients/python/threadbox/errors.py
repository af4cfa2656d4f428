"""Errors of the threadbox API, as exceptions.

Every error the server answers has a status, a stable snake_case ``code`` (branch on
it, never on ``message``) and a human ``message``; 429 and 503 also say how long to
wait (``retry_after``, seconds). The codes each route can answer are listed in
``docs/API.md``.
"""

from __future__ import annotations


class ThreadboxError(Exception):
    """An error answer of the threadbox API.

    Attributes:
        status: the HTTP status (0 when the server could not be reached).
        code: the stable error code, e.g. ``file_not_found``.
        message: the server's human-readable message.
        retry_after: seconds to wait before retrying (429, 503), else ``None``.
        request_id: the server's ``X-Request-Id``, for its logs.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id


class ConnectionFailed(ThreadboxError):
    """The server could not be reached, or the connection broke mid-answer."""


class BadRequest(ThreadboxError):
    """400: the request is malformed (``invalid_path``, ``missing_command``, ...)."""


class Unauthorized(ThreadboxError):
    """401: no API key, or a bad or revoked one."""


class Forbidden(ThreadboxError):
    """403: an admin route with a user key, or an operation not allowed on this resource."""


class NotFound(ThreadboxError):
    """404: no such thread, file, lease, upload, skill or snapshot (another user's look the same)."""


class Conflict(ThreadboxError):
    """409: the resource's state forbids it (``file_exists``, ``is_a_directory``, ...)."""


class TooLarge(ThreadboxError):
    """413: the body is over the server's limit."""


class RateLimited(ThreadboxError):
    """429: over a limit; ``retry_after`` says when to try again."""


class ServerError(ThreadboxError):
    """5xx: the server or one of its dependencies failed."""


class Unavailable(ServerError):
    """503: a dependency is down; ``retry_after`` says when to try again."""


class QuotaExceeded(ThreadboxError):
    """507: the user's volume has no room for this."""


_BY_STATUS: dict[int, type[ThreadboxError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    429: RateLimited,
    503: Unavailable,
    507: QuotaExceeded,
}


def error_class(status: int) -> type[ThreadboxError]:
    """The exception class for an error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return ThreadboxError
