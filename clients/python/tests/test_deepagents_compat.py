"""With deepagents importable, the backends are its classes and return its types.

deepagents is not installed here (no package index), so a minimal stand-in with
its module layout and names (``deepagents.backends.protocol``,
``deepagents.backends.sandbox.BaseSandbox`` with its abstract methods) is put on
the path of a fresh interpreter, which imports threadbox and checks the wiring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

PROTOCOL = '''
import abc
from dataclasses import dataclass
from typing import TypedDict

class FileInfo(TypedDict, total=False):
    path: str
    is_dir: bool
    size: int
    modified_at: str

class GrepMatch(TypedDict):
    path: str
    line: int
    text: str

class FileData(TypedDict):
    content: str
    encoding: str

@dataclass
class ExecuteResponse:
    output: str
    exit_code: int | None = None
    truncated: bool = False

@dataclass
class FileUploadResponse:
    path: str
    error: str | None = None

@dataclass
class FileDownloadResponse:
    path: str
    content: bytes | None = None
    error: str | None = None

@dataclass
class ReadResult:
    error: str | None = None
    file_data: FileData | None = None
    total_lines: int | None = None
    start_line: int | None = None
    end_line: int | None = None
    next_offset: int | None = None
    no_lines_requested: bool = False

@dataclass
class WriteResult:
    error: str | None = None
    path: str | None = None

@dataclass
class EditResult:
    error: str | None = None
    path: str | None = None
    occurrences: int | None = None

@dataclass
class DeleteResult:
    error: str | None = None
    path: str | None = None

@dataclass
class LsResult:
    error: str | None = None
    entries: list | None = None

@dataclass
class GrepResult:
    error: str | None = None
    matches: list | None = None
    truncated: bool = False

@dataclass
class GlobResult:
    error: str | None = None
    matches: list | None = None
    truncated: bool = False

class BackendProtocol(abc.ABC):
    def ls(self, path): raise NotImplementedError

class SandboxBackendProtocol(BackendProtocol):
    @property
    def id(self): raise NotImplementedError
    def execute(self, command, *, timeout=None): raise NotImplementedError
'''

SANDBOX = '''
from abc import ABC, abstractmethod
from deepagents.backends.protocol import SandboxBackendProtocol, LsResult

class BaseSandbox(SandboxBackendProtocol, ABC):
    @abstractmethod
    def execute(self, command, *, timeout=None): ...
    def ls(self, path):
        return LsResult(entries=[])  # deepagents builds this on execute
    @property
    @abstractmethod
    def id(self): ...
    @abstractmethod
    def upload_files(self, files): ...
    @abstractmethod
    def download_files(self, paths): ...
'''

CHECK = '''
import threadbox
from threadbox import Client, FilesBackend, ThreadBackend
from deepagents.backends import protocol, sandbox

assert threadbox.DEEPAGENTS
assert issubclass(ThreadBackend, sandbox.BaseSandbox)
assert issubclass(FilesBackend, protocol.BackendProtocol)
assert threadbox.ExecuteResponse is protocol.ExecuteResponse
assert threadbox.FileUploadResponse is protocol.FileUploadResponse
assert threadbox.ReadResult is protocol.ReadResult
# BaseSandbox's file operations are deepagents' own (built on execute)...
assert ThreadBackend.ls is sandbox.BaseSandbox.ls
# ...and ThreadBackend fills every abstract method: it can be made.
b = ThreadBackend(Client("http://127.0.0.1:9"), "t1", create=False)
assert b.id == "t1"
# The volume backend keeps its own operations over the API.
assert FilesBackend.ls is not protocol.BackendProtocol.ls
print("ok")
'''


class DeepagentsCompat(unittest.TestCase):
    def test_backends_are_deepagents_classes(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            pkg = os.path.join(d, "deepagents", "backends")
            os.makedirs(pkg)
            for path, text in [
                (os.path.join(d, "deepagents", "__init__.py"), ""),
                (os.path.join(pkg, "__init__.py"), ""),
                (os.path.join(pkg, "protocol.py"), PROTOCOL),
                (os.path.join(pkg, "sandbox.py"), SANDBOX),
            ]:
                with open(path, "w") as f:
                    f.write(textwrap.dedent(text))
            here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([d, here]), "PYTHONDONTWRITEBYTECODE": "1"}
            out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.strip(), "ok")

    def test_standalone_without_deepagents(self) -> None:
        import threadbox
        from threadbox import ThreadBackend

        self.assertFalse(threadbox.DEEPAGENTS, "deepagents is importable here: the standalone types are not under test")
        for op in ("ls", "read", "write", "edit", "grep", "glob", "delete", "execute", "upload_files", "download_files"):
            self.assertTrue(callable(getattr(ThreadBackend, op)), op)


if __name__ == "__main__":
    unittest.main()
