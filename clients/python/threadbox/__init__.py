"""threadbox: a client for the threadbox API, and the thread backend of an agent runtime.

    from threadbox import Client, ThreadBackend

    tb = Client("http://127.0.0.1:8080", api_key="tb_...")
    sandbox = ThreadBackend(tb, "conversation-42")
    print(sandbox.execute("python3 --version").output)

``Client`` covers the whole REST API (``docs/API.md``); ``ThreadBackend`` and
``FilesBackend`` have LangChain deepagents' backend shape (and are its
``BaseSandbox`` / ``BackendProtocol`` when deepagents is installed).
Standard library only.
"""

from ._protocol import (
    DEEPAGENTS,
    DeleteResult,
    EditResult,
    ExecuteResponse,
    FileDownloadResponse,
    FileUploadResponse,
    GlobResult,
    GrepResult,
    LsResult,
    ReadResult,
    WriteResult,
)
from .backend import FilesBackend, ThreadBackend
from .client import Admin, Client, Files, Threads, Uploads
from .errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServerError,
    ThreadboxError,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from .models import (
    Activation,
    DirListing,
    DownloadResult,
    ExecResult,
    FileEntry,
    Lease,
    Moved,
    Readiness,
    Skill,
    SkillUploaded,
    Snapshot,
    Thread,
    Upload,
    UploadResult,
    Whoami,
    WorkflowStarted,
    WrittenFile,
)

__all__ = [
    "DEEPAGENTS",
    "Activation",
    "Admin",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "DeleteResult",
    "DirListing",
    "DownloadResult",
    "EditResult",
    "ExecResult",
    "ExecuteResponse",
    "FileDownloadResponse",
    "FileEntry",
    "FileUploadResponse",
    "Files",
    "FilesBackend",
    "Forbidden",
    "GlobResult",
    "GrepResult",
    "Lease",
    "LsResult",
    "Moved",
    "NotFound",
    "QuotaExceeded",
    "RateLimited",
    "ReadResult",
    "Readiness",
    "ServerError",
    "Skill",
    "SkillUploaded",
    "Snapshot",
    "Thread",
    "ThreadBackend",
    "ThreadboxError",
    "Threads",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Upload",
    "UploadResult",
    "Uploads",
    "Whoami",
    "WorkflowStarted",
    "WriteResult",
    "WrittenFile",
]
