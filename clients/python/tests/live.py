"""The running threadbox the live tests talk to.

``go test ./tests/python`` starts the whole system (the emulator, Temporal, the API
and the worker) and runs these tests with THREADBOX_URL, THREADBOX_API_KEY and
THREADBOX_ADMIN_KEY set. Without them the live tests fail: they are never
skipped quietly.
"""

from __future__ import annotations

import os
import uuid

from threadbox import Client


def env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"{name} is not set: run the live tests with `go test ./tests/python` (it starts threadbox)")
    return v


def client(key_var: str = "THREADBOX_API_KEY") -> Client:
    return Client(env("THREADBOX_URL"), env(key_var), max_retry_wait=2.0)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


#: Every byte value, twice, and a NUL-heavy tail: binary content that text
#: handling would mangle.
BINARY = bytes(range(256)) * 2 + b"\x00\xff\x00\r\n\x80" * 100
