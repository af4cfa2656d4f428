"""threadbox as the "thread backend" of an agent runtime, in LangChain
deepagents' sandbox shape.

``ThreadBackend`` is one conversation thread's sandbox: ``id``, ``execute``,
``upload_files``, ``download_files`` and the file operations (``ls``, ``read``,
``write``, ``edit``, ``grep``, ``glob``, ``delete``). With deepagents installed
it is a ``deepagents.backends.sandbox.BaseSandbox`` (deepagents then builds the
file operations on ``execute``, as for every sandbox); without it, it works on
its own and implements them over the REST API, returning the same types.

``FilesBackend`` is the user's persistent volume (``/v1/files``) as a
deepagents ``BackendProtocol``: the same file operations, no shell.

Background commands and streamed exec are not here yet: they will be methods
of ``ThreadBackend`` built on the thread's command routes (``Client.threads``).
"""

from __future__ import annotations

import base64
import fnmatch
import posixpath
import re
import shlex
from typing import Callable, Iterator

from ._protocol import (
    DEEPAGENTS,
    BackendProtocol,
    BaseSandbox,
    DeleteResult,
    EditResult,
    ExecuteResponse,
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
from .client import Client
from .errors import ThreadboxError
from .models import DirListing

# deepagents' FileOperationError values.
FILE_NOT_FOUND = "file_not_found"
PERMISSION_DENIED = "permission_denied"
IS_DIRECTORY = "is_directory"
INVALID_PATH = "invalid_path"

# threadbox error codes as deepagents' file errors; a code not listed is
# passed on as it is (deepagents allows a backend-specific string).
_COMMON = {
    "file_not_found": FILE_NOT_FOUND,
    "is_a_directory": IS_DIRECTORY,
    "invalid_path": INVALID_PATH,
    "invalid_move": INVALID_PATH,
    "forbidden": PERMISSION_DENIED,
    "file_operation_failed": PERMISSION_DENIED,
}
#: Upload: a parent that is a file makes the path invalid.
UPLOAD_ERRORS = {**_COMMON, "not_a_directory": INVALID_PATH}
#: Download: a parent that is a file means there is no such file.
DOWNLOAD_ERRORS = {**_COMMON, "not_a_directory": FILE_NOT_FOUND}


def file_error(code: str | None, table: dict[str, str]) -> str:
    """deepagents' error for a threadbox error code."""
    if not code:
        return "unknown_error"
    return table.get(code, code)


#: A batch upload request holds at most this many bytes of files (several
#: batches are sent for more), so memory stays bounded.
UPLOAD_BATCH_BYTES = 64 << 20
UPLOAD_BATCH_FILES = 1000


def _batches(files: list[tuple[str, bytes]]) -> Iterator[list[tuple[int, str, bytes]]]:
    batch: list[tuple[int, str, bytes]] = []
    size = 0
    for i, (path, content) in enumerate(files):
        if batch and (size + len(content) > UPLOAD_BATCH_BYTES or len(batch) >= UPLOAD_BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append((i, path, content))
        size += len(content)
    if batch:
        yield batch


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regular expression: ``**`` crosses directories, ``*``
    and ``?`` do not, ``[...]`` is a class (``[!...]`` negated)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (j := pattern.find("]", i + 2)) > 0:
            inner = pattern[i + 1 : j]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            i = j + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _has_magic(s: str) -> bool:
    return any(c in s for c in "*?[")


def _split_glob(pattern: str) -> tuple[str, str]:
    """The pattern's literal leading directories and the rest."""
    parts = pattern.split("/")
    i = 0
    while i < len(parts) - 1 and not _has_magic(parts[i]):
        i += 1
    return "/".join(parts[:i]), "/".join(parts[i:])


def _read_window(path: str, data: bytes, offset: int, limit: int) -> ReadResult:
    """deepagents' read semantics over a whole file's bytes: a window of lines
    of UTF-8 text (offset 0-indexed), or the whole file base64 when binary."""
    if limit <= 0:
        return ReadResult(no_lines_requested=True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ReadResult(file_data={"content": base64.b64encode(data).decode(), "encoding": "base64"})
    if not text:
        return ReadResult(file_data={"content": "", "encoding": "utf-8"})
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    offset = max(0, offset)
    if offset >= len(lines):
        return ReadResult(error=f"Error: Line offset {offset} exceeds file length ({len(lines)} lines) of '{path}'")
    window = lines[offset : offset + limit]
    end = offset + len(window)
    return ReadResult(
        file_data={"content": "\n".join(window), "encoding": "utf-8"},
        total_lines=len(lines),
        start_line=offset + 1,
        end_line=end,
        next_offset=end if end < len(lines) else None,
    )


class _FileAPI:
    """The file routes a backend works through: a thread's sandbox or the volume."""

    def __init__(
        self,
        get_path: Callable[[str], bytes | DirListing],
        read: Callable[[str], bytes],
        write: Callable[[str, bytes], object],
        delete: Callable[[str], None],
    ) -> None:
        self.get_path, self.read, self.write, self.delete = get_path, read, write, delete


class _RestFileOps:
    """ls, read, write, edit and delete over the REST file routes (``self._files``)."""

    _files: _FileAPI

    def ls(self, path: str) -> LsResult:
        try:
            got = self._files.get_path(path)
        except ThreadboxError as e:
            if e.code in ("file_not_found", "not_a_directory"):
                return LsResult(error=f"Error: Path '{path}' not found")
            return LsResult(error=f"Error listing '{path}': {e.message}")
        if not isinstance(got, DirListing):
            return LsResult(error=f"Error: '{path}' is not a directory")
        entries: list[FileInfo] = []
        for e in got.entries:
            info: FileInfo = {"path": posixpath.join(path, e.name), "is_dir": e.is_dir, "size": e.size}
            if e.modified_at is not None:
                info["modified_at"] = e.modified_at.isoformat()
            entries.append(info)
        return LsResult(entries=entries)

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        if limit <= 0:
            return ReadResult(no_lines_requested=True)
        try:
            data = self._files.read(file_path)
        except ThreadboxError as e:
            if e.code in ("file_not_found", "not_a_directory"):
                return ReadResult(error=f"Error: File '{file_path}' not found")
            if e.code == "is_a_directory":
                return ReadResult(error=f"Error: '{file_path}' is a directory")
            return ReadResult(error=f"Error reading '{file_path}': {e.message}")
        return _read_window(file_path, data, offset, limit)

    def write(self, file_path: str, content: str) -> WriteResult:
        try:
            self._files.write(file_path, content.encode("utf-8"))
        except ThreadboxError as e:
            return WriteResult(error=f"Failed to write file '{file_path}': {file_error(e.code, UPLOAD_ERRORS)}")
        return WriteResult(path=file_path)

    def edit(self, file_path: str, old_string: str, new_string: str, replace_all: bool = False) -> EditResult:  # noqa: FBT001, FBT002
        try:
            text = self._files.read(file_path).decode("utf-8")
        except ThreadboxError as e:
            if e.code in ("file_not_found", "not_a_directory"):
                return EditResult(error=f"Error: File '{file_path}' not found")
            return EditResult(error=f"Error editing file '{file_path}': {e.message}")
        except UnicodeDecodeError:
            return EditResult(error=f"Error: File '{file_path}' is not a UTF-8 text file")
        count = text.count(old_string)
        if count == 0:
            return EditResult(error=f"Error: String not found in file: '{old_string}'")
        if count > 1 and not replace_all:
            return EditResult(
                error=f"Error: String '{old_string}' appears multiple times. Use replace_all=True to replace all occurrences."
            )
        result = text.replace(old_string, new_string) if replace_all else text.replace(old_string, new_string, 1)
        try:
            self._files.write(file_path, result.encode("utf-8"))
        except ThreadboxError as e:
            return EditResult(error=f"Error editing file '{file_path}': {e.message}")
        return EditResult(path=file_path, occurrences=count if replace_all else 1)

    def delete(self, file_path: str) -> DeleteResult:
        try:
            self._files.delete(file_path)
        except ThreadboxError as e:
            if e.code in ("file_not_found", "not_a_directory"):
                return DeleteResult(error=f"Error: '{file_path}' not found")
            return DeleteResult(error=f"Error deleting file '{file_path}': {e.message}")
        return DeleteResult(path=file_path)


class _ShellSearch:
    """grep and glob run in the sandbox (GNU grep and find) through ``execute``."""

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        raise NotImplementedError

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        root = path or "."
        cmd = ["grep", "-rHnIFZ", "-e", pattern]
        if glob and "/" not in glob:
            cmd.append("--include=" + glob)
        cmd += ["--", root]
        res = self.execute(" ".join(shlex.quote(a) for a in cmd))
        if res.exit_code not in (0, 1):
            return GrepResult(error=f"Error: grep failed: {res.output.strip()[:500]}")
        lines = res.output.split("\n")
        if res.truncated and lines:
            lines.pop()  # the output was cut: its last line may be partial
        path_re = glob_regex(glob) if glob and "/" in glob else None
        matches: list[GrepMatch] = []
        truncated = res.truncated
        for line in lines:
            name, nul, rest = line.partition("\0")
            num, colon, text = rest.partition(":")
            if not nul or not colon or not num.isdigit():
                continue
            if path_re and not path_re.match(posixpath.relpath(name, root)):
                continue
            if max_count is not None and len(matches) >= max_count:
                truncated = True
                break
            matches.append({"path": name, "line": int(num), "text": text})
        return GrepResult(matches=matches, truncated=truncated)

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        root = path or "/"
        prefix, rest = _split_glob(pattern.lstrip("/") if root == "/" else pattern)
        start = posixpath.join(root, prefix) if prefix else root
        depth = [] if "**" in rest else ["-maxdepth", str(rest.count("/") + 1)]
        cmd = ["find", start, "-mindepth", "1", *depth, "-printf", r"%y\t%s\t%T@\t%P\0"]
        res = self.execute(" ".join(shlex.quote(a) for a in cmd) + " 2>/dev/null")
        rx = glob_regex(rest)
        records = res.output.split("\0")
        if res.truncated and records:
            records.pop()
        matches: list[FileInfo] = []
        for rec in records:
            parts = rec.split("\t", 3)
            if len(parts) != 4 or not rx.match(parts[3]):
                continue
            kind, size, _mtime, rel = parts
            matches.append({"path": posixpath.join(start, rel), "is_dir": kind == "d", "size": int(size)})
        matches.sort(key=lambda m: m["path"])
        return GlobResult(matches=matches, truncated=res.truncated)


class _WalkSearch:
    """grep and glob by walking directories through the REST routes (no shell)."""

    _files: _FileAPI
    #: Bounds of one walk: entries visited, and the largest file grep reads.
    MAX_ENTRIES = 20000
    MAX_GREP_FILE = 8 << 20

    def _walk(self, root: str) -> Iterator[tuple[str, bool, int]]:
        """(path, is_dir, size) under root, depth first; stops at MAX_ENTRIES."""
        seen = 0
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                got = self._files.get_path(d)
            except ThreadboxError:
                continue
            if not isinstance(got, DirListing):
                continue
            for e in sorted(got.entries, key=lambda e: e.name, reverse=True):
                seen += 1
                if seen > self.MAX_ENTRIES:
                    raise _WalkTooLong
                p = posixpath.join(d, e.name)
                yield p, e.is_dir, e.size
                if e.is_dir:
                    stack.append(p)

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        root = path or "/"
        path_re = glob_regex(glob) if glob and "/" in glob else None
        matches: list[GrepMatch] = []
        truncated = False
        try:
            for p, is_dir, size in self._walk(root):
                if is_dir or size > self.MAX_GREP_FILE:
                    continue
                rel = posixpath.relpath(p, root)
                if glob and not (path_re.match(rel) if path_re else fnmatch.fnmatchcase(posixpath.basename(p), glob)):
                    continue
                try:
                    text = self._files.read(p).decode("utf-8")
                except (ThreadboxError, UnicodeDecodeError):
                    continue
                for n, line in enumerate(text.split("\n"), 1):
                    if pattern in line:
                        if max_count is not None and len(matches) >= max_count:
                            return GrepResult(matches=matches, truncated=True)
                        matches.append({"path": p, "line": n, "text": line})
        except _WalkTooLong:
            truncated = True
        return GrepResult(matches=matches, truncated=truncated)

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        root = path or "/"
        rx = glob_regex(pattern.lstrip("/") if root == "/" else pattern)
        matches: list[FileInfo] = []
        truncated = False
        try:
            for p, is_dir, size in self._walk(root):
                if rx.match(posixpath.relpath(p, root)):
                    matches.append({"path": p, "is_dir": is_dir, "size": size})
        except _WalkTooLong:
            truncated = True
        matches.sort(key=lambda m: m["path"])
        return GlobResult(matches=matches, truncated=truncated)


class _WalkTooLong(Exception):
    pass


# With deepagents, BaseSandbox provides the file operations (built on
# execute, as for every deepagents sandbox); without it, ours do.
_THREAD_BASES: tuple[type, ...] = (BaseSandbox,) if DEEPAGENTS else (_RestFileOps, _ShellSearch)


class ThreadBackend(*_THREAD_BASES):  # type: ignore[misc]
    """One conversation thread's sandbox, as a deepagents sandbox backend.

    Args:
        client: a ``Client``.
        thread_id: the thread (the agent runtime's own id); generated when omitted.
        create: create the thread (or take it if it exists) now, so its sandbox is
            running; with ``False`` the thread must exist.
        exec_timeout: seconds a command may run when ``execute`` is given no
            timeout (the server's default, 300, when ``None``).
    """

    def __init__(
        self,
        client: Client,
        thread_id: str | None = None,
        *,
        create: bool = True,
        exec_timeout: int | None = None,
    ) -> None:
        if create:
            thread_id = client.threads.create(thread_id).thread_id
        elif not thread_id:
            raise ValueError("thread_id is required when create is False")
        self._client = client
        self._thread_id: str = thread_id  # type: ignore[assignment]
        self._exec_timeout = exec_timeout
        threads = client.threads
        self._files = _FileAPI(
            get_path=lambda p: threads.get_path(self._thread_id, p),
            read=lambda p: threads.read(self._thread_id, p),
            write=lambda p, b: threads.write(self._thread_id, p, b),
            delete=lambda p: threads.delete_file(self._thread_id, p, recursive=True),
        )

    @property
    def id(self) -> str:
        """The thread id."""
        return self._thread_id

    @property
    def client(self) -> Client:
        return self._client

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        """Run a shell command in the thread's sandbox and wait for it.

        ``timeout`` is in seconds (``None`` or 0: the backend's default). A command
        cut by its timeout has exit code 124 and says so in its output.
        """
        t = timeout if timeout else self._exec_timeout
        r = self._client.threads.exec(self._thread_id, command, timeout_s=t)
        output = r.output
        if r.timed_out and not output:
            output = f"Error: the command timed out after {t or 'the default'} seconds"
        return ExecuteResponse(output=output, exit_code=r.exit_code, truncated=r.truncated)

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        """Write files (parents created, existing ones replaced): one response per
        file, in order, ``error`` one of deepagents' file errors or ``None``."""
        out: list[FileUploadResponse] = [FileUploadResponse(path=p) for p, _ in files]
        for batch in _batches(list(files)):
            try:
                results = self._client.threads.upload(self._thread_id, [(p, c) for _, p, c in batch])
            except ThreadboxError as e:  # the whole request failed: each file says why
                for i, _, _ in batch:
                    out[i] = FileUploadResponse(path=files[i][0], error=e.code)
                continue
            for (i, _, _), r in zip(batch, results):
                if r.error is not None:
                    out[i] = FileUploadResponse(path=files[i][0], error=file_error(r.code, UPLOAD_ERRORS))
        return out

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        """Read files: one response per path, in order, with ``content`` or ``error``."""
        out: list[FileDownloadResponse] = []
        for i in range(0, len(paths), UPLOAD_BATCH_FILES):
            chunk = paths[i : i + UPLOAD_BATCH_FILES]
            try:
                results = self._client.threads.download(self._thread_id, chunk)
            except ThreadboxError as e:  # the whole request failed: each file says why
                out.extend(FileDownloadResponse(path=p, error=e.code) for p in chunk)
                continue
            for asked, r in zip(chunk, results):
                if r.content is not None:
                    out.append(FileDownloadResponse(path=asked, content=r.content))
                elif r.code == "batch_too_large":  # over the batch's byte budget: on its own
                    out.append(self._download_one(asked))
                else:
                    out.append(FileDownloadResponse(path=asked, error=file_error(r.code, DOWNLOAD_ERRORS)))
        return out

    def _download_one(self, path: str) -> FileDownloadResponse:
        try:
            return FileDownloadResponse(path=path, content=self._client.threads.read(self._thread_id, path))
        except ThreadboxError as e:
            return FileDownloadResponse(path=path, error=file_error(e.code, DOWNLOAD_ERRORS))

    def delete_thread(self) -> None:
        """Delete the thread and its sandbox (not named ``delete``, which deletes a file)."""
        self._client.threads.delete(self._thread_id)


class FilesBackend(_RestFileOps, _WalkSearch, BackendProtocol):  # type: ignore[misc]
    """The user's persistent volume (``/v1/files``) as a deepagents backend.

    Paths are volume paths (``/`` is the volume's root). No ``execute``: grep and
    glob walk the volume through the API, bounded to ``MAX_ENTRIES`` entries.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        f = client.files
        self._files = _FileAPI(
            get_path=f.get_path,
            read=f.read,
            write=f.write,
            delete=lambda p: f.delete(p, recursive=True),
        )

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        out: list[FileUploadResponse] = []
        for path, content in files:
            try:
                self._client.files.write(path, content)
                out.append(FileUploadResponse(path=path))
            except ThreadboxError as e:
                out.append(FileUploadResponse(path=path, error=file_error(e.code, UPLOAD_ERRORS)))
        return out

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        out: list[FileDownloadResponse] = []
        for path in paths:
            try:
                out.append(FileDownloadResponse(path=path, content=self._client.files.read(path)))
            except ThreadboxError as e:
                out.append(FileDownloadResponse(path=path, error=file_error(e.code, DOWNLOAD_ERRORS)))
        return out
