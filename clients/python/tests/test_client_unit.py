"""The client's own logic, without a server: errors, retries, globs, reads.

Retries are tested against a local HTTP server that answers what each test
scripts (threadbox itself answers 429/503 only under faults); everything else
is tested against a real threadbox in the *_live tests.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
import unittest

from threadbox import NotFound, RateLimited, ThreadboxError, Unavailable
from threadbox._http import Response, Transport
from threadbox.backend import _read_window, _split_glob, file_error, glob_regex, DOWNLOAD_ERRORS, UPLOAD_ERRORS
from threadbox.models import _ts


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, headers, body)."""

    script: list[tuple[int, dict[str, str], bytes]] = []
    seen: list[tuple[str, bytes]] = []

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        type(self).seen.append((self.command, body))
        status, headers, out = type(self).script.pop(0)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


def err(code: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": "m"}}).encode()


class Retries(unittest.TestCase):
    def setUp(self) -> None:
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        Scripted.script, Scripted.seen = [], []

    def tearDown(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def test_503_then_success_is_retried_with_the_same_body(self) -> None:
        Scripted.script = [
            (503, {"Retry-After": "0"}, err("sandbox_unavailable")),
            (429, {"Retry-After": "0"}, err("rate_limited")),
            (200, {}, b'{"ok":true}'),
        ]
        t = Transport(self.url, "k", max_retries=3)
        self.assertEqual(t.request("POST", "/x", json_body={"a": 1}).json(), {"ok": True})
        self.assertEqual([b for _, b in Scripted.seen], [b'{"a": 1}'] * 3)

    def test_retries_are_bounded(self) -> None:
        Scripted.script = [(503, {"Retry-After": "0"}, err("sandbox_unavailable"))] * 3
        t = Transport(self.url, "k", max_retries=2)
        with self.assertRaises(Unavailable) as cm:
            t.request("GET", "/x")
        self.assertEqual(len(Scripted.seen), 3)
        e = cm.exception
        self.assertEqual((e.status, e.code, e.message, e.retry_after), (503, "sandbox_unavailable", "m", 0.0))

    def test_retry_after_is_honoured_and_capped(self) -> None:
        Scripted.script = [(429, {"Retry-After": "1"}, err("rate_limited")), (200, {}, b"{}")]
        start = time.monotonic()
        Transport(self.url, "k").request("GET", "/x")
        self.assertGreaterEqual(time.monotonic() - start, 0.95, "Retry-After: 1 was not waited")
        Scripted.script = [(429, {"Retry-After": "3600"}, err("rate_limited")), (200, {}, b"{}")]
        start = time.monotonic()
        Transport(self.url, "k", max_retry_wait=0.2).request("GET", "/x")
        self.assertLess(time.monotonic() - start, 5, "a long Retry-After must be capped by max_retry_wait")

    def test_no_retry_without_budget_or_replayable_body(self) -> None:
        Scripted.script = [(429, {"Retry-After": "0"}, err("rate_limited"))]
        with self.assertRaises(RateLimited):
            Transport(self.url, "k", max_retries=0).request("GET", "/x")
        self.assertEqual(len(Scripted.seen), 1)

        class OneShot(io.RawIOBase):  # a stream that cannot be sent twice
            def __init__(self) -> None:
                self.data = b"once"

            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray) -> int:
                n, self.data = len(self.data), b""
                b[:n] = b"once"[:n] if n else b""
                return n

        Scripted.seen = []
        Scripted.script = [(503, {"Retry-After": "0"}, err("sandbox_unavailable"))]
        with self.assertRaises(Unavailable):
            Transport(self.url, "k").request("PUT", "/x", body=OneShot(), headers={"Content-Length": "4"})
        self.assertEqual(len(Scripted.seen), 1)

    def test_other_errors_are_not_retried(self) -> None:
        Scripted.script = [(404, {"X-Request-Id": "rid"}, err("file_not_found"))]
        with self.assertRaises(NotFound) as cm:
            Transport(self.url, "k").request("GET", "/x")
        self.assertEqual((cm.exception.code, cm.exception.request_id), ("file_not_found", "rid"))
        self.assertEqual(len(Scripted.seen), 1)


class Errors(unittest.TestCase):
    def test_body_less_answer(self) -> None:
        e = Transport.error("HEAD", Response(404, {}, b""))
        self.assertIsInstance(e, NotFound)
        self.assertEqual(e.code, "not_found")

    def test_unknown_status(self) -> None:
        e = Transport.error("GET", Response(418, {}, err("teapot")))
        self.assertIs(type(e), ThreadboxError)
        self.assertEqual(e.code, "teapot")

    def test_file_error_mapping(self) -> None:
        self.assertEqual(file_error("file_not_found", DOWNLOAD_ERRORS), "file_not_found")
        self.assertEqual(file_error("is_a_directory", UPLOAD_ERRORS), "is_directory")
        self.assertEqual(file_error("not_a_directory", UPLOAD_ERRORS), "invalid_path")
        self.assertEqual(file_error("not_a_directory", DOWNLOAD_ERRORS), "file_not_found")
        self.assertEqual(file_error("file_operation_failed", UPLOAD_ERRORS), "permission_denied")
        self.assertEqual(file_error("quota_exceeded", UPLOAD_ERRORS), "quota_exceeded")


class Helpers(unittest.TestCase):
    def test_glob_regex(self) -> None:
        cases = {
            "**/*.py": (["a.py", "x/y/b.py"], ["a.pyc", "x/y/b.txt"]),
            "*.py": (["a.py"], ["x/a.py"]),
            "src/**": (["src/a", "src/a/b"], ["lib/a"]),
            "t?st[0-9].txt": (["test1.txt"], ["test.txt", "tesst1.txt"]),
            "[!a]*": (["b"], ["a"]),
        }
        for pat, (yes, no) in cases.items():
            rx = glob_regex(pat)
            for p in yes:
                self.assertTrue(rx.match(p), (pat, p))
            for p in no:
                self.assertFalse(rx.match(p), (pat, p))
        self.assertEqual(_split_glob("src/lib/**/*.py"), ("src/lib", "**/*.py"))
        self.assertEqual(_split_glob("*.py"), ("", "*.py"))

    def test_read_window(self) -> None:
        r = _read_window("f", b"a\nb\nc\n", 1, 1)
        self.assertEqual((r.file_data["content"], r.start_line, r.end_line, r.total_lines, r.next_offset), ("b", 2, 2, 3, 2))
        r = _read_window("f", b"a\nb\nc\n", 1, 10)
        self.assertIsNone(r.next_offset)
        self.assertIsNotNone(_read_window("f", b"a\n", 5, 1).error)
        self.assertTrue(_read_window("f", b"a", 0, 0).no_lines_requested)
        r = _read_window("f", b"\xff\x00", 0, 10)
        self.assertEqual(r.file_data, {"content": "/wA=", "encoding": "base64"})
        self.assertEqual(_read_window("f", b"", 0, 10).file_data, {"content": "", "encoding": "utf-8"})

    def test_timestamps(self) -> None:
        t = _ts("2026-01-02T03:04:05.123456789Z")
        self.assertEqual((t.microsecond, t.utcoffset().total_seconds()), (123456, 0))
        self.assertEqual(_ts("2026-01-02T03:04:05+02:00").utcoffset().total_seconds(), 7200)
        self.assertIsNone(_ts(None))


if __name__ == "__main__":
    unittest.main()
