"""The result types of LangChain deepagents' backend protocol.

When ``deepagents`` is importable they are its own (``deepagents.backends.protocol``),
and the backends subclass its ``BaseSandbox`` / ``BackendProtocol``; when it is
not, this module defines types with the same names, fields and defaults, so
code written against deepagents works with threadbox's backends either way.
The shapes follow ``libs/deepagents/deepagents/backends/protocol.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

try:  # pragma: no cover - exercised with a deepagents stub in the tests
    from deepagents.backends.protocol import (  # type: ignore[import-not-found]
        BackendProtocol,
        DeleteResult,
        EditResult,
        ExecuteResponse,
        FileData,
        FileDownloadResponse,
        FileInfo,
        FileUploadResponse,
        GlobResult,
        GrepMatch,
        GrepResult,
        LsResult,
        ReadResult,
        WriteResult,
    )
    from deepagents.backends.sandbox import BaseSandbox  # type: ignore[import-not-found]

    DEEPAGENTS = True
except ImportError:
    DEEPAGENTS = False

    FileOperationError = Literal["file_not_found", "permission_denied", "is_directory", "invalid_path"]

    class _FileInfoRequired(TypedDict):
        path: str

    class FileInfo(_FileInfoRequired, total=False):  # type: ignore[no-redef]
        """A listing entry: only ``path`` is always present."""

        is_dir: bool
        size: int
        modified_at: str

    class GrepMatch(TypedDict):  # type: ignore[no-redef]
        """One line matching a grep."""

        path: str
        line: int
        text: str

    class _FileDataRequired(TypedDict):
        content: str
        encoding: str

    class FileData(_FileDataRequired, total=False):  # type: ignore[no-redef]
        """A file's content: ``utf-8`` text, or ``base64`` for binary."""

        created_at: str
        modified_at: str

    @dataclass
    class ExecuteResponse:  # type: ignore[no-redef]
        """A command's combined output, exit code and whether the output was cut."""

        output: str
        exit_code: int | None = None
        truncated: bool = False

    @dataclass
    class FileUploadResponse:  # type: ignore[no-redef]
        """One file of ``upload_files``: ``error`` is ``None`` on success."""

        path: str
        error: str | None = None

    @dataclass
    class FileDownloadResponse:  # type: ignore[no-redef]
        """One file of ``download_files``: ``content`` on success, else ``error``."""

        path: str
        content: bytes | None = None
        error: str | None = None

    @dataclass
    class ReadResult:  # type: ignore[no-redef]
        """A window of a file's lines (text) or the whole file (binary, base64)."""

        error: str | None = None
        file_data: FileData | None = None
        total_lines: int | None = None
        start_line: int | None = None
        end_line: int | None = None
        next_offset: int | None = None
        no_lines_requested: bool = False

    @dataclass
    class WriteResult:  # type: ignore[no-redef]
        error: str | None = None
        path: str | None = None

    @dataclass
    class EditResult:  # type: ignore[no-redef]
        error: str | None = None
        path: str | None = None
        occurrences: int | None = None

    @dataclass
    class DeleteResult:  # type: ignore[no-redef]
        error: str | None = None
        path: str | None = None

    @dataclass
    class LsResult:  # type: ignore[no-redef]
        error: str | None = None
        entries: list[FileInfo] | None = None

    @dataclass
    class GrepResult:  # type: ignore[no-redef]
        error: str | None = None
        matches: list[GrepMatch] | None = None
        truncated: bool = False

    @dataclass
    class GlobResult:  # type: ignore[no-redef]
        error: str | None = None
        matches: list[FileInfo] | None = None
        truncated: bool = False

    class BackendProtocol:  # type: ignore[no-redef]
        """Stands in for deepagents' base class when it is not installed."""

    BaseSandbox: Any = None  # type: ignore[no-redef]

__all__ = [
    "DEEPAGENTS",
    "BackendProtocol",
    "BaseSandbox",
    "DeleteResult",
    "EditResult",
    "ExecuteResponse",
    "FileData",
    "FileDownloadResponse",
    "FileInfo",
    "FileUploadResponse",
    "GlobResult",
    "GrepMatch",
    "GrepResult",
    "LsResult",
    "ReadResult",
    "WriteResult",
]
