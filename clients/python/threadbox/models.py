"""The API's answers as dataclasses (schemas of ``api/openapi/openapi.yaml``).

Each ``from_json`` reads what the server sends and ignores fields it does not
know, so a newer server never breaks an older client.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _ts(v: str | None) -> datetime | None:
    """An RFC 3339 timestamp (Go writes up to nanoseconds; Python keeps microseconds)."""
    if v is None:
        return None
    v = v.replace("Z", "+00:00")
    head, dot, rest = v.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tz = rest[:digits], rest[digits:]
        v = f"{head}.{(frac + '000000')[:6]}{tz}"
    return datetime.fromisoformat(v)


@dataclass(frozen=True)
class Thread:
    """A conversation thread and its sandbox."""

    thread_id: str
    state: str  # creating, running, stopped, deleted, error
    sandbox_id: str | None
    snapshot: str | None
    generation: int
    last_activity_at: datetime | None
    auto_stop_at: datetime | None
    auto_delete_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    #: True when the create call that returned this thread created it (201).
    created: bool = False

    @classmethod
    def from_json(cls, d: dict[str, Any], *, created: bool = False) -> "Thread":
        return cls(
            thread_id=d["thread_id"],
            state=d["state"],
            sandbox_id=d.get("sandbox_id"),
            snapshot=d.get("snapshot"),
            generation=int(d.get("generation", 0)),
            last_activity_at=_ts(d.get("last_activity_at")),
            auto_stop_at=_ts(d.get("auto_stop_at")),
            auto_delete_at=_ts(d.get("auto_delete_at")),
            created_at=_ts(d.get("created_at")),
            updated_at=_ts(d.get("updated_at")),
            created=created,
        )


@dataclass(frozen=True)
class ExecResult:
    """A command's result. ``timed_out``: the timeout cut it (exit code 124, no output)."""

    exit_code: int
    output: str
    truncated: bool
    timed_out: bool

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ExecResult":
        return cls(int(d["exit_code"]), d.get("output", ""), bool(d.get("truncated")), bool(d.get("timed_out")))


@dataclass(frozen=True)
class FileEntry:
    """One entry of a directory listing."""

    name: str
    size: int
    is_dir: bool
    modified_at: datetime | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "FileEntry":
        return cls(d["name"], int(d.get("size", 0)), bool(d.get("is_dir")), _ts(d.get("modified_at")))


@dataclass(frozen=True)
class DirListing:
    """A directory: its path and entries."""

    path: str
    entries: list[FileEntry]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DirListing":
        return cls(d.get("path", ""), [FileEntry.from_json(e) for e in d.get("entries", [])])


@dataclass(frozen=True)
class WrittenFile:
    """A file written: its resolved path and size."""

    path: str
    size: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "WrittenFile":
        return cls(d["path"], int(d["size"]))


@dataclass(frozen=True)
class Moved:
    """A move: the resolved source and destination."""

    source: str
    destination: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Moved":
        return cls(d["from"], d["to"])


@dataclass(frozen=True)
class UploadResult:
    """One file of a batch upload. ``code`` and ``error`` are ``None`` on success."""

    path: str
    code: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "UploadResult":
        return cls(d["path"], d.get("code"), d.get("error"))


@dataclass(frozen=True)
class DownloadResult:
    """One file of a batch download: its bytes, or ``code`` and ``error``."""

    path: str
    content: bytes | None = None
    code: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DownloadResult":
        c = d.get("content")
        return cls(d["path"], base64.b64decode(c) if c is not None else None, d.get("code"), d.get("error"))


@dataclass(frozen=True)
class Lease:
    """A lease on a thread's sandbox, live until ``expires_at`` or its release."""

    lease_id: str
    expires_at: datetime | None
    sandbox_id: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Lease":
        return cls(d["lease_id"], _ts(d.get("expires_at")), d.get("sandbox_id", ""))


@dataclass(frozen=True)
class Whoami:
    """Whose API key this is."""

    user_id: str
    admin: bool

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Whoami":
        return cls(d["user_id"], bool(d.get("admin")))


@dataclass(frozen=True)
class Readiness:
    """The server's dependencies and their state."""

    ready: bool
    checks: dict[str, str]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Readiness":
        return cls(d.get("status") == "ready", dict(d.get("checks", {})))


@dataclass(frozen=True)
class Upload:
    """A tus upload: its URL (for resuming), destination and size."""

    url: str
    path: str
    size: int
    #: True once the last byte was accepted and the file is in the volume.
    stored: bool = False


@dataclass(frozen=True)
class SkillUploaded:
    """A skill version accepted for validation."""

    skill_id: str
    name: str
    version: int
    status: str
    workflow_id: str

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SkillUploaded":
        return cls(d["skill_id"], d["name"], int(d["version"]), d["status"], d["workflow_id"])


@dataclass(frozen=True)
class Skill:
    """A skill version, with its validation status and log."""

    skill_id: str
    name: str
    version: int
    description: str
    status: str  # validating, valid, invalid, published
    validation_log: str
    snapshot_id: int | None
    workflow_id: str
    manifest: dict[str, Any]
    created_by: str
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Skill":
        return cls(
            d["skill_id"], d["name"], int(d["version"]), d.get("description", ""), d["status"],
            d.get("validation_log", ""), d.get("snapshot_id"), d.get("workflow_id", ""),
            dict(d.get("manifest") or {}), d.get("created_by", ""), _ts(d.get("created_at")), _ts(d.get("updated_at")),
        )


@dataclass(frozen=True)
class Activation:
    """One change (or deliberate non-change) of the active snapshot."""

    id: int
    from_snapshot_id: int
    to_snapshot_id: int
    actor: str
    reason: str
    outcome: str  # activated, skipped
    workflow_id: str
    created_at: datetime | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Activation":
        return cls(
            int(d["id"]), int(d["from_snapshot_id"]), int(d["to_snapshot_id"]), d.get("actor", ""),
            d.get("reason", ""), d.get("outcome", ""), d.get("workflow_id", ""), _ts(d.get("created_at")),
        )


@dataclass(frozen=True)
class Snapshot:
    """A snapshot version; id 0 is the base snapshot."""

    id: int
    version: int
    daytona_name: str
    state: str  # building, ready, failed
    active: bool
    base: bool
    skill_ids: list[str]
    skills: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    workflow_id: str = ""
    created_at: datetime | None = None
    ready_at: datetime | None = None
    activated_at: datetime | None = None
    audit: list[Activation] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Snapshot":
        return cls(
            int(d["id"]), int(d["version"]), d.get("daytona_name", ""), d["state"], bool(d.get("active")),
            bool(d.get("base")), list(d.get("skill_ids", [])), list(d.get("skills", [])), d.get("error"),
            d.get("workflow_id", ""), _ts(d.get("created_at")), _ts(d.get("ready_at")), _ts(d.get("activated_at")),
            [Activation.from_json(a) for a in d.get("audit", [])],
        )


@dataclass(frozen=True)
class WorkflowStarted:
    """An admin action started as a workflow."""

    workflow_id: str
    snapshot_id: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "WorkflowStarted":
        return cls(d["workflow_id"], int(d["snapshot_id"]))
