"""The typed client against a real threadbox (see live.py)."""

from __future__ import annotations

import io
import unittest

from threadbox import (
    BadRequest,
    Conflict,
    DirListing,
    Forbidden,
    NotFound,
    ThreadboxError,
    Unauthorized,
)
from threadbox.client import Client

from . import live


class ClientLive(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tb = live.client()
        cls.thread = live.unique("py-client")
        cls.tb.threads.create(cls.thread)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tb.close()

    def test_identity_and_operations(self) -> None:
        me = self.tb.whoami()
        self.assertFalse(me.admin)
        self.assertTrue(me.user_id)
        self.assertTrue(self.tb.healthz())
        self.assertTrue(self.tb.readyz().ready)
        self.assertIn("threadbox_http_requests_total", self.tb.metrics())
        doc = self.tb.openapi()
        self.assertEqual(doc["openapi"], "3.1.0")
        self.assertIn("/v1/threads/{id}/exec", doc["paths"])

    def test_bad_key(self) -> None:
        bad = Client(live.env("THREADBOX_URL"), "tb_not_a_key")
        self.addCleanup(bad.close)
        with self.assertRaises(Unauthorized) as cm:
            bad.whoami()
        self.assertEqual(cm.exception.status, 401)
        self.assertEqual(cm.exception.code, "unauthorized")

    def test_thread_lifecycle(self) -> None:
        tid = live.unique("py-life")
        t = self.tb.threads.create(tid)
        self.assertTrue(t.created)
        self.assertEqual(t.state, "running")
        self.assertTrue(t.sandbox_id)
        again = self.tb.threads.create(tid)
        self.assertFalse(again.created)
        self.assertEqual(again.sandbox_id, t.sandbox_id)
        self.assertIn(tid, [x.thread_id for x in self.tb.threads.list()])
        self.assertEqual(self.tb.threads.get(tid).thread_id, tid)
        self.tb.threads.delete(tid)
        with self.assertRaises(NotFound) as cm:
            self.tb.threads.get(tid)
        self.assertEqual(cm.exception.code, "not_found")
        self.assertIn(tid, [x.thread_id for x in self.tb.threads.list(include_deleted=True)])

    def test_exec(self) -> None:
        r = self.tb.threads.exec(self.thread, "echo out; echo err >&2; exit 3")
        self.assertEqual(r.exit_code, 3)
        self.assertEqual(sorted(r.output.split()), ["err", "out"])
        self.assertFalse(r.truncated)
        r = self.tb.threads.exec(self.thread, "mkdir -p w && cd w && pwd; echo $GREETING", cwd=".", env={"GREETING": "hi"})
        self.assertEqual(r.output, "/home/daytona/w\nhi\n")
        r = self.tb.threads.exec(self.thread, "sleep 5; echo late", timeout_s=1)
        self.assertTrue(r.timed_out)
        self.assertEqual(r.exit_code, 124)
        with self.assertRaises(BadRequest) as cm:
            self.tb.threads.exec(self.thread, "   ")
        self.assertEqual(cm.exception.code, "missing_command")

    def test_files_binary_roundtrip_and_errors(self) -> None:
        th = self.tb.threads
        w = th.write(self.thread, "bin/data.bin", live.BINARY)
        self.assertEqual(w.path, "/home/daytona/bin/data.bin")
        self.assertEqual(w.size, len(live.BINARY))
        self.assertEqual(th.read(self.thread, "/home/daytona/bin/data.bin"), live.BINARY)
        self.assertEqual(th.read(self.thread, "bin/data.bin", offset=10, length=5), live.BINARY[10:15])
        buf = io.BytesIO()
        self.assertEqual(th.read_into(self.thread, "bin/data.bin", buf), len(live.BINARY))
        self.assertEqual(buf.getvalue(), live.BINARY)
        # A file streamed from a file object (chunked on the wire).
        th.write(self.thread, "bin/streamed.bin", io.BufferedReader(io.BytesIO(live.BINARY)))
        self.assertEqual(th.read(self.thread, "bin/streamed.bin"), live.BINARY)

        listing = th.list_dir(self.thread, "bin")
        self.assertIsInstance(listing, DirListing)
        self.assertEqual(sorted(e.name for e in listing.entries), ["data.bin", "streamed.bin"])
        self.assertIsInstance(th.get_path(self.thread, "bin"), DirListing)

        moved = th.move(self.thread, "bin/streamed.bin", "bin/moved.bin")
        self.assertEqual(moved.destination, "/home/daytona/bin/moved.bin")
        with self.assertRaises(Conflict) as cm:
            th.move(self.thread, "bin/moved.bin", "bin/data.bin")
        self.assertEqual(cm.exception.code, "file_exists")
        with self.assertRaises(NotFound) as cm:
            th.read(self.thread, "bin/streamed.bin")
        self.assertEqual(cm.exception.code, "file_not_found")
        with self.assertRaises(BadRequest) as cm:
            th.read(self.thread, "../../etc/passwd")
        self.assertEqual(cm.exception.code, "invalid_path")
        with self.assertRaises(Conflict) as cm:
            th.read(self.thread, "bin")
        self.assertEqual(cm.exception.code, "is_a_directory")
        with self.assertRaises(Conflict) as cm:
            th.delete_file(self.thread, "bin")
        self.assertEqual(cm.exception.code, "is_a_directory")
        th.delete_file(self.thread, "bin", recursive=True)
        with self.assertRaises(NotFound):
            th.list_dir(self.thread, "bin")

    def test_batch_upload_download(self) -> None:
        th = self.tb.threads
        up = th.upload(self.thread, [("batch/a.bin", live.BINARY), ("../../escape", b"x"), ("batch/b.txt", b"bee")])
        self.assertEqual([u.code for u in up], [None, "invalid_path", None])
        self.assertEqual(up[0].path, "/home/daytona/batch/a.bin")
        down = th.download(self.thread, ["batch/a.bin", "batch/b.txt", "batch/missing", "batch", "../../x"])
        self.assertEqual(down[0].content, live.BINARY)
        self.assertEqual(down[1].content, b"bee")
        self.assertEqual([d.code for d in down[2:]], ["file_not_found", "is_a_directory", "invalid_path"])
        self.assertTrue(all(d.content is None and d.error for d in down[2:]))

    def test_leases(self) -> None:
        lease = self.tb.threads.lease(self.thread, 60)
        self.assertTrue(lease.lease_id.startswith("lease-"))
        self.assertTrue(lease.sandbox_id)
        self.tb.threads.release_lease(self.thread, lease.lease_id)
        with self.assertRaises(NotFound):
            self.tb.threads.release_lease(self.thread, lease.lease_id)
        with self.assertRaises(BadRequest) as cm:
            self.tb.threads.lease(self.thread, 0)
        self.assertEqual(cm.exception.code, "invalid_ttl")

    def test_unknown_thread(self) -> None:
        with self.assertRaises(NotFound) as cm:
            self.tb.threads.exec("no-such-thread", "true")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))
        self.assertTrue(cm.exception.request_id)


class FilesAndUploadsLive(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tb = live.client()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tb.close()

    def setUp(self) -> None:
        self.dir = "/" + live.unique("py-files")

    def test_user_files(self) -> None:
        f = self.tb.files
        w = f.write(self.dir + "/a.bin", live.BINARY)
        self.assertEqual(w.path, self.dir.lstrip("/") + "/a.bin")
        self.assertEqual(f.read(self.dir + "/a.bin"), live.BINARY)
        self.assertEqual([e.name for e in f.list_dir(self.dir).entries], ["a.bin"])
        self.assertIn(self.dir.lstrip("/"), [e.name for e in f.list_dir().entries])
        f.move(self.dir + "/a.bin", self.dir + "/b.bin")
        with self.assertRaises(NotFound) as cm:
            f.read(self.dir + "/a.bin")
        self.assertEqual(cm.exception.code, "file_not_found")
        with self.assertRaises(BadRequest) as cm:
            f.read("../../etc/passwd")
        self.assertEqual(cm.exception.code, "invalid_path")
        with self.assertRaises(Conflict) as cm:
            f.delete(self.dir)
        self.assertEqual(cm.exception.code, "directory_not_empty")
        f.delete(self.dir, recursive=True)

    def test_tus_upload_and_resume(self) -> None:
        data = live.BINARY * 300  # ~ 400 KB
        up = self.tb.uploads.upload(self.dir + "/tus.bin", data, chunk_size=64 << 10)
        self.assertTrue(up.stored)
        self.assertEqual(self.tb.files.read(self.dir + "/tus.bin"), data)

        # Interrupted after one chunk, then resumed from the server's offset.
        url = self.tb.uploads.create(self.dir + "/resumed.bin", len(data))
        self.tb.uploads.patch(url, 0, data[: 100_000])
        self.assertEqual(self.tb.uploads.offset(url), (100_000, len(data)))
        up = self.tb.uploads.upload(self.dir + "/resumed.bin", io.BytesIO(data), size=len(data), url=url)
        self.assertTrue(up.stored)
        self.assertEqual(self.tb.files.read(self.dir + "/resumed.bin"), data)

        with self.assertRaises(BadRequest) as cm:
            self.tb.uploads.create("../../escape", 10)
        self.assertEqual(cm.exception.code, "invalid_path")
        url = self.tb.uploads.create(self.dir + "/abandoned.bin", 10)
        self.tb.uploads.delete(url)
        with self.assertRaises(NotFound):
            self.tb.uploads.offset(url)


class AdminLive(unittest.TestCase):
    def test_user_key_is_refused(self) -> None:
        tb = live.client()
        self.addCleanup(tb.close)
        with self.assertRaises(Forbidden) as cm:
            tb.admin.skills()
        self.assertEqual(cm.exception.code, "forbidden")

    def test_snapshots_and_skills(self) -> None:
        tb = live.client("THREADBOX_ADMIN_KEY")
        self.addCleanup(tb.close)
        admin = tb.admin
        self.assertTrue(tb.whoami().admin)
        snaps, active = admin.snapshots()
        self.assertEqual(sum(s.active for s in snaps), 1)
        self.assertIn(active, [s.id for s in snaps])
        self.assertEqual(admin.snapshot(0).base, True)
        self.assertIsInstance(admin.skills(), list)
        self.assertIsInstance(admin.activations(), list)
        with self.assertRaises(NotFound):
            admin.snapshot(999999)
        with self.assertRaises(ThreadboxError) as cm:
            admin.upload_skill(b"not an archive")
        self.assertEqual(cm.exception.status, 400)


if __name__ == "__main__":
    unittest.main()
