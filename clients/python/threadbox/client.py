"""A typed client for the whole threadbox REST API (``docs/API.md``).

    tb = Client("http://127.0.0.1:8080", api_key="tb_...")
    tb.threads.create("conversation-42")
    print(tb.threads.exec("conversation-42", "uname -a").output)

Every method maps to one operation of ``api/openapi/openapi.yaml`` (named in its
docstring); errors raise ``ThreadboxError`` subclasses carrying status, code,
message and ``retry_after``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import uuid
from typing import Any, BinaryIO, Iterable, Iterator
from urllib.parse import quote, urlsplit

from ._http import Response, Stream, Transport
from .errors import Conflict, ConnectionFailed, StreamBroken, ThreadboxError
from .models import (
    Activation,
    Command,
    CommandOutput,
    DirListing,
    DownloadResult,
    ExecResult,
    Lease,
    Moved,
    Readiness,
    Skill,
    SkillUploaded,
    Snapshot,
    StreamEvent,
    Thread,
    Upload,
    UploadResult,
    Whoami,
    WorkflowStarted,
    WrittenFile,
)

#: Seconds added to a command's own timeout for the answer to arrive.
EXEC_GRACE = 30.0
#: The server's default command timeout (``timeout_s`` omitted).
DEFAULT_EXEC_TIMEOUT = 300
#: The longest a followed command can run (one lease: 24 h minus 30 s), as a
#: read timeout for its stream, which may be silent for as long as it runs.
MAX_COMMAND_SECONDS = 24 * 3600
#: The media type of streamed answers.
NDJSON = "application/x-ndjson"


def _seg(s: str) -> str:
    """One URL path segment."""
    return quote(s, safe="")


def _listing_or_bytes(resp: Response) -> bytes | DirListing:
    """A file answer carries Accept-Ranges; a directory answer is its listing."""
    if "accept-ranges" in resp.headers:
        return resp.body
    return DirListing.from_json(resp.json())


def _stream_file(t: Transport, route: str, path: str, out: BinaryIO) -> int:
    """Copy the file at path (a files route's ?path=) into out as it arrives."""
    with t.open("GET", route, query={"path": path}) as s:
        if "accept-ranges" not in s.headers:
            raise Conflict(409, "is_a_directory", f"{path} is a directory")
        n = 0
        for chunk in s.iter_chunks():
            out.write(chunk)
            n += len(chunk)
        return n


def _exec_body(command: str, cwd: str | None, env: dict[str, str] | None, timeout_s: int | None) -> dict[str, Any]:
    """The body of an exec or a command start."""
    body: dict[str, Any] = {"command": command}
    if cwd is not None:
        body["cwd"] = cwd
    if env:
        body["env"] = env
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    return body


def _events(stream: Stream) -> Iterator[StreamEvent]:
    """The events of a streamed answer, up to and with its ``exit``; the stream's
    ``error`` event raises ``StreamBroken``. Closing the iterator early closes the
    connection (the command runs on unless it was started with kill_on_disconnect)."""
    with stream:
        for line in stream.iter_lines():
            if not line:
                continue
            d = json.loads(line)
            if d.get("type") == "error":
                e = d.get("error") or {}
                raise StreamBroken(0, str(e.get("code", "stream_broken")), str(e.get("message", "the stream broke off")))
            ev = StreamEvent.from_json(d)
            yield ev
            if ev.type == "exit":
                return
    raise ConnectionFailed(0, "connection_failed", "the stream ended before the command did")


def _range_header(offset: int | None, length: int | None) -> dict[str, str]:
    if offset is None and length is None:
        return {}
    start = offset or 0
    if length is None:
        return {"Range": f"bytes={start}-"}
    if length <= 0:
        raise ValueError("length must be positive")
    return {"Range": f"bytes={start}-{start + length - 1}"}


def _multipart(files: Iterable[tuple[str, bytes]]) -> tuple[str, bytes]:
    """The batch upload body: a `path` field, then its `file` part, per file."""
    boundary = "threadbox-" + uuid.uuid4().hex
    out = bytearray()
    for path, content in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n'.encode()
            + path.encode()
            + b"\r\n"
        )
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + bytes(content) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


class Threads:
    """Threads, their commands (plain, streamed, background), files and leases (``/v1/threads``)."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _p(self, thread_id: str, rest: str = "") -> str:
        return f"/v1/threads/{_seg(thread_id)}{rest}"

    def create(self, thread_id: str | None = None) -> Thread:
        """createThread: create the thread (or return it if it exists); its sandbox is running."""
        resp = self._t.request(
            "POST", "/v1/threads", json_body={"thread_id": thread_id} if thread_id else {}, ok=(200, 201)
        )
        return Thread.from_json(resp.json(), created=resp.status == 201)

    def list(self, *, include_deleted: bool = False) -> list[Thread]:
        """listThreads."""
        q = {"include_deleted": True} if include_deleted else None
        return [Thread.from_json(t) for t in self._t.request("GET", "/v1/threads", query=q).json()["threads"]]

    def get(self, thread_id: str) -> Thread:
        """getThread: with its live state and deadlines."""
        return Thread.from_json(self._t.request("GET", self._p(thread_id)).json())

    def delete(self, thread_id: str) -> bool:
        """deleteThread: True when the sandbox is destroyed, False when its destruction is under way."""
        return self._t.request("DELETE", self._p(thread_id), ok=(202, 204)).status == 204

    def exec(
        self,
        thread_id: str,
        command: str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout_s: int | None = None,
    ) -> ExecResult:
        """execCommand: run a shell command and wait for it."""
        resp = self._t.request(
            "POST", self._p(thread_id, "/exec"), json_body=_exec_body(command, cwd, env, timeout_s),
            timeout=self._exec_wait(timeout_s),
        )
        return ExecResult.from_json(resp.json())

    def exec_stream(
        self,
        thread_id: str,
        command: str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout_s: int | None = None,
        kill_on_disconnect: bool = False,
    ) -> Iterator[StreamEvent]:
        """execCommand, streamed: the command's events as it prints (``command`` first,
        then ``output`` pieces, ``exit`` last). Leaving the iterator early does not stop
        the command (follow it again with ``follow_command``) unless kill_on_disconnect."""
        body = _exec_body(command, cwd, env, timeout_s)
        if kill_on_disconnect:
            body["kill_on_disconnect"] = True
        return _events(self._t.open(
            "POST", self._p(thread_id, "/exec"), json_body=body, headers={"Accept": NDJSON},
            timeout=self._exec_wait(timeout_s),
        ))

    def _exec_wait(self, timeout_s: int | None) -> float:
        """How long an exec's answer may take: the command's limit and a grace."""
        return max((timeout_s or DEFAULT_EXEC_TIMEOUT) + EXEC_GRACE, self._t.timeout)

    def start_command(
        self,
        thread_id: str,
        command: str,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout_s: int | None = None,
    ) -> Command:
        """startCommand: start a background command; answers at once."""
        resp = self._t.request(
            "POST", self._p(thread_id, "/commands"), json_body=_exec_body(command, cwd, env, timeout_s), ok=(202,)
        )
        return Command.from_json(resp.json())

    def commands(self, thread_id: str) -> list[Command]:
        """listCommands: newest first."""
        return [Command.from_json(c) for c in self._t.request("GET", self._p(thread_id, "/commands")).json()["commands"]]

    def command(self, thread_id: str, command_id: str) -> Command:
        """getCommand: as it is now."""
        return Command.from_json(self._t.request("GET", self._p(thread_id, "/commands/" + _seg(command_id))).json())

    def command_output(self, thread_id: str, command_id: str) -> CommandOutput:
        """getCommandOutput: what it printed so far (all of it once it ended)."""
        resp = self._t.request("GET", self._p(thread_id, f"/commands/{_seg(command_id)}/output"))
        return CommandOutput.from_json(resp.json())

    def follow_command(self, thread_id: str, command_id: str, *, timeout: float | None = None) -> Iterator[StreamEvent]:
        """getCommandOutput with follow: its events from its first byte until it ends.

        ``timeout`` is the longest the stream may stay silent (default: the longest a
        command can run)."""
        return _events(self._t.open(
            "GET", self._p(thread_id, f"/commands/{_seg(command_id)}/output"), query={"follow": True},
            headers={"Accept": NDJSON}, timeout=MAX_COMMAND_SECONDS + EXEC_GRACE if timeout is None else timeout,
        ))

    def signal_command(self, thread_id: str, command_id: str, signal: str) -> None:
        """signalCommand: ``TERM``, ``INT``, ``HUP``, ``QUIT``, ``USR1``, ``USR2`` or ``KILL``;
        Conflict(command_not_running) once it ended."""
        self._t.request(
            "POST", self._p(thread_id, f"/commands/{_seg(command_id)}/signal"), json_body={"signal": signal}, ok=(204,)
        )

    def kill_command(self, thread_id: str, command_id: str) -> Command:
        """killCommand: SIGTERM, SIGKILL 5 s later; the command once it ended."""
        return Command.from_json(self._t.request("DELETE", self._p(thread_id, "/commands/" + _seg(command_id))).json())

    def get_path(self, thread_id: str, path: str) -> bytes | DirListing:
        """getThreadFile: a file's bytes, or a directory's listing."""
        return _listing_or_bytes(self._t.request("GET", self._p(thread_id, "/files"), query={"path": path}))

    def read(self, thread_id: str, path: str, *, offset: int | None = None, length: int | None = None) -> bytes:
        """getThreadFile: a file's bytes (a range of them with offset/length)."""
        resp = self._t.request(
            "GET", self._p(thread_id, "/files"), query={"path": path},
            headers=_range_header(offset, length), ok=(200, 206),
        )
        got = _listing_or_bytes(resp)
        if isinstance(got, DirListing):
            raise Conflict(409, "is_a_directory", f"{path} is a directory")
        return got

    def read_into(self, thread_id: str, path: str, out: BinaryIO) -> int:
        """getThreadFile, streamed into out; returns the number of bytes."""
        return _stream_file(self._t, self._p(thread_id, "/files"), path, out)

    def list_dir(self, thread_id: str, path: str) -> DirListing:
        """getThreadFile on a directory."""
        got = self.get_path(thread_id, path)
        if not isinstance(got, DirListing):
            raise Conflict(409, "not_a_directory", f"{path} is not a directory")
        return got

    def write(self, thread_id: str, path: str, data: bytes | BinaryIO) -> WrittenFile:
        """putThreadFile: write data (bytes, or a file read as it is sent) to path."""
        resp = self._t.request(
            "PUT", self._p(thread_id, "/files"), query={"path": path}, body=data,
            headers={"Content-Type": "application/octet-stream"}, ok=(201,),
        )
        return WrittenFile.from_json(resp.json())

    def delete_file(self, thread_id: str, path: str, *, recursive: bool = False) -> None:
        """deleteThreadFile."""
        q: dict[str, Any] = {"path": path}
        if recursive:
            q["recursive"] = True
        self._t.request("DELETE", self._p(thread_id, "/files"), query=q, ok=(204,))

    def move(self, thread_id: str, source: str, destination: str) -> Moved:
        """moveThreadFile: an existing destination is Conflict(file_exists)."""
        resp = self._t.request("POST", self._p(thread_id, "/files/move"), json_body={"from": source, "to": destination})
        return Moved.from_json(resp.json())

    def upload(self, thread_id: str, files: Iterable[tuple[str, bytes]]) -> list[UploadResult]:
        """uploadThreadFiles: many files in one request; one result per file, in order."""
        ctype, body = _multipart(files)
        resp = self._t.request("POST", self._p(thread_id, "/files/upload"), body=body, headers={"Content-Type": ctype})
        return [UploadResult.from_json(f) for f in resp.json()["files"]]

    def download(self, thread_id: str, paths: list[str]) -> list[DownloadResult]:
        """downloadThreadFiles: many files in one request; one result per path, in order."""
        resp = self._t.request("POST", self._p(thread_id, "/files/download"), json_body={"paths": paths})
        return [DownloadResult.from_json(f) for f in resp.json()["files"]]

    def lease(self, thread_id: str, ttl_s: int) -> Lease:
        """createLease: keep the sandbox from auto-stopping for ttl_s seconds."""
        resp = self._t.request("POST", self._p(thread_id, "/leases"), json_body={"ttl_s": ttl_s}, ok=(201,))
        return Lease.from_json(resp.json())

    def release_lease(self, thread_id: str, lease_id: str) -> None:
        """releaseLease."""
        self._t.request("DELETE", self._p(thread_id, "/leases/" + _seg(lease_id)), ok=(204,))


class Files:
    """The user's persistent volume (``/v1/files``); paths are volume paths."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def get_path(self, path: str = "/") -> bytes | DirListing:
        """getFile: a file's bytes, or a directory's listing."""
        return _listing_or_bytes(self._t.request("GET", "/v1/files", query={"path": path}))

    def read(self, path: str, *, offset: int | None = None, length: int | None = None) -> bytes:
        """getFile: a file's bytes (a range of them with offset/length)."""
        resp = self._t.request(
            "GET", "/v1/files", query={"path": path}, headers=_range_header(offset, length), ok=(200, 206)
        )
        got = _listing_or_bytes(resp)
        if isinstance(got, DirListing):
            raise Conflict(409, "is_a_directory", f"{path} is a directory")
        return got

    def read_into(self, path: str, out: BinaryIO) -> int:
        """getFile, streamed into out; returns the number of bytes."""
        return _stream_file(self._t, "/v1/files", path, out)

    def list_dir(self, path: str = "/") -> DirListing:
        """getFile on a directory."""
        got = self.get_path(path)
        if not isinstance(got, DirListing):
            raise Conflict(409, "not_a_directory", f"{path} is not a directory")
        return got

    def write(self, path: str, data: bytes | BinaryIO) -> WrittenFile:
        """putFile: QuotaExceeded when the volume has no room."""
        resp = self._t.request(
            "PUT", "/v1/files", query={"path": path}, body=data,
            headers={"Content-Type": "application/octet-stream"}, ok=(201,),
        )
        return WrittenFile.from_json(resp.json())

    def delete(self, path: str, *, recursive: bool = False) -> None:
        """deleteFile."""
        q: dict[str, Any] = {"path": path}
        if recursive:
            q["recursive"] = True
        self._t.request("DELETE", "/v1/files", query=q, ok=(204,))

    def move(self, source: str, destination: str) -> Moved:
        """moveFile."""
        return Moved.from_json(self._t.request("POST", "/v1/files/move", json_body={"from": source, "to": destination}).json())


class Uploads:
    """tus 1.0 resumable uploads into the user's volume (``/v1/uploads/``)."""

    TUS = {"Tus-Resumable": "1.0.0"}

    def __init__(self, t: Transport) -> None:
        self._t = t

    def _path(self, url: str) -> str:
        """The request path of an upload URL (the creation's Location)."""
        p = urlsplit(url).path
        prefix = urlsplit(self._t.base_url).path.rstrip("/")
        return p[len(prefix):] if prefix and p.startswith(prefix) else p

    def _create(self, path: str, size: int, filename: str | None) -> Response:
        meta = "path " + base64.b64encode(path.encode()).decode()
        if filename:
            meta += ",filename " + base64.b64encode(filename.encode()).decode()
        return self._t.request(
            "POST", "/v1/uploads/",
            headers={**self.TUS, "Upload-Length": str(size), "Upload-Metadata": meta}, ok=(201,),
        )

    def create(self, path: str, size: int, *, filename: str | None = None) -> str:
        """createUpload: returns the upload's URL."""
        return self._create(path, size, filename).headers["location"]

    def offset(self, url: str) -> tuple[int, int]:
        """getUploadOffset: (bytes the server has, the upload's length)."""
        resp = self._t.request("HEAD", self._path(url), headers=self.TUS)
        return int(resp.headers["upload-offset"]), int(resp.headers["upload-length"])

    def patch(self, url: str, offset: int, chunk: bytes) -> tuple[int, bool]:
        """patchUpload: (the new offset, whether the file is now stored in the volume)."""
        resp = self._t.request(
            "PATCH", self._path(url), body=chunk, ok=(204,),
            headers={**self.TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        )
        return int(resp.headers["upload-offset"]), resp.headers.get("upload-stored") == "true"

    def delete(self, url: str) -> None:
        """deleteUpload: abandon an upload."""
        self._t.request("DELETE", self._path(url), headers=self.TUS, ok=(204,))

    def upload(
        self,
        path: str,
        data: bytes | BinaryIO,
        *,
        size: int | None = None,
        chunk_size: int = 8 << 20,
        url: str | None = None,
    ) -> Upload:
        """Upload data to path in chunks; with url (an earlier upload's), resume it.

        data is bytes or a seekable binary file (its size is read from it when
        not given). The answer says where the upload lives and that it is stored.
        """
        f: BinaryIO
        if isinstance(data, (bytes, bytearray, memoryview)):
            f, size = io.BytesIO(bytes(data)), len(data)
        else:
            f = data
            if size is None:
                size = os.fstat(f.fileno()).st_size if hasattr(f, "fileno") else None
            if size is None:
                raise ValueError("size is required for a file without a size")
        start = f.tell()
        if url is None:
            resp = self._create(path, size, os.path.basename(path))
            url, offset = resp.headers["location"], 0
            stored = resp.headers.get("upload-stored") == "true"  # an empty file is stored at creation
        else:
            offset, length = self.offset(url)
            if length != size:
                raise ValueError(f"the upload at {url} is {length} bytes, not {size}")
            stored = offset == size  # the server answers complete only for a stored upload
        while offset < size:
            f.seek(start + offset)
            chunk = f.read(min(chunk_size, size - offset))
            if not chunk:
                raise ValueError("the data ended before its size")
            offset, stored = self.patch(url, offset, chunk)
        return Upload(url=url, path=path, size=size, stored=stored)


class Admin:
    """Skills and snapshots (``/v1/admin``); admin keys only."""

    def __init__(self, t: Transport) -> None:
        self._t = t

    def upload_skill(self, archive: bytes, filename: str = "skill.zip") -> SkillUploaded:
        """uploadSkill: a .zip or .tar.gz of a folder with SKILL.md."""
        boundary = "threadbox-" + uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + archive + f"\r\n--{boundary}--\r\n".encode()
        resp = self._t.request(
            "POST", "/v1/admin/skills", body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, ok=(202,),
        )
        return SkillUploaded.from_json(resp.json())

    def skills(self, name: str | None = None) -> list[Skill]:
        """listSkills."""
        q = {"name": name} if name else None
        return [Skill.from_json(s) for s in self._t.request("GET", "/v1/admin/skills", query=q).json()["skills"]]

    def skill(self, skill_id: str) -> Skill:
        """getSkill."""
        return Skill.from_json(self._t.request("GET", "/v1/admin/skills/" + _seg(skill_id)).json())

    def snapshots(self) -> tuple[list[Snapshot], int]:
        """listSnapshots: the versions and the active one's id."""
        d = self._t.request("GET", "/v1/admin/snapshots").json()
        return [Snapshot.from_json(s) for s in d["snapshots"]], int(d["active_id"])

    def snapshot(self, snapshot_id: int) -> Snapshot:
        """getSnapshot."""
        return Snapshot.from_json(self._t.request("GET", f"/v1/admin/snapshots/{int(snapshot_id)}").json())

    def activations(self) -> list[Activation]:
        """listSnapshotActivations."""
        d = self._t.request("GET", "/v1/admin/snapshots/activations").json()
        return [Activation.from_json(a) for a in d["activations"]]

    def activate(self, snapshot_id: int, *, reason: str | None = None) -> WorkflowStarted:
        """activateSnapshot."""
        resp = self._t.request(
            "POST", f"/v1/admin/snapshots/{int(snapshot_id)}/activate",
            json_body={"reason": reason} if reason else None, ok=(202,),
        )
        return WorkflowStarted.from_json(resp.json())

    def rollback(self, *, to: int | None = None, reason: str | None = None) -> WorkflowStarted:
        """rollbackSnapshot: to a version, or to the one active before."""
        body: dict[str, Any] = {}
        if to is not None:
            body["to"] = to
        if reason:
            body["reason"] = reason
        resp = self._t.request("POST", "/v1/admin/snapshots/rollback", json_body=body or None, ok=(202,))
        return WorkflowStarted.from_json(resp.json())


class Client:
    """The threadbox API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080``.
        api_key: a key from ``threadbox apikey create`` (``threadbox dev`` prints one).
        timeout, max_retries, max_retry_wait: see ``Transport``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 330.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.transport = Transport(
            base_url, api_key, timeout=timeout, max_retries=max_retries, max_retry_wait=max_retry_wait
        )
        self.threads = Threads(self.transport)
        self.files = Files(self.transport)
        self.uploads = Uploads(self.transport)
        self.admin = Admin(self.transport)

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Client":
        """A client for ``$THREADBOX_URL`` with ``$THREADBOX_API_KEY``."""
        url = os.environ.get("THREADBOX_URL")
        if not url:
            raise ThreadboxError(0, "not_configured", "set THREADBOX_URL (and THREADBOX_API_KEY)")
        return cls(url, os.environ.get("THREADBOX_API_KEY"), **kwargs)

    def whoami(self) -> Whoami:
        """whoami: the key's user."""
        return Whoami.from_json(self.transport.request("GET", "/v1/whoami").json())

    def healthz(self) -> bool:
        """healthz: the server process is up."""
        return self.transport.request("GET", "/healthz").json().get("status") == "ok"

    def readyz(self) -> Readiness:
        """readyz: its dependencies, ready or not (a 503 is an answer here, not an error)."""
        return Readiness.from_json(self.transport.request("GET", "/readyz", ok=(200, 503)).json())

    def metrics(self) -> str:
        """metrics: the Prometheus text."""
        return self.transport.request("GET", "/metrics").body.decode()

    def openapi(self) -> dict[str, Any]:
        """getOpenAPIJSON: the API's OpenAPI document."""
        return self.transport.request("GET", "/v1/openapi.json").json()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
