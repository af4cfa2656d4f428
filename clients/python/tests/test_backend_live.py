"""ThreadBackend and FilesBackend, the deepagents shapes, against a real threadbox."""

from __future__ import annotations

import unittest

from threadbox import (
    DEEPAGENTS,
    ExecuteResponse,
    FileDownloadResponse,
    FilesBackend,
    FileUploadResponse,
    ThreadBackend,
)

from . import live


class ThreadBackendLive(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tb = live.client()
        cls.sandbox = ThreadBackend(cls.tb, live.unique("py-backend"))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tb.close()

    def test_id_is_the_thread(self) -> None:
        self.assertEqual(self.tb.threads.get(self.sandbox.id).thread_id, self.sandbox.id)
        # A second backend on the same id is the same thread and sandbox.
        other = ThreadBackend(self.tb, self.sandbox.id)
        self.assertEqual(other.id, self.sandbox.id)
        self.assertEqual(self.tb.threads.get(other.id).sandbox_id, self.tb.threads.get(self.sandbox.id).sandbox_id)

    def test_execute(self) -> None:
        r = self.sandbox.execute("echo hello; exit 7")
        self.assertIsInstance(r, ExecuteResponse)
        self.assertEqual((r.output, r.exit_code, r.truncated), ("hello\n", 7, False))
        r = self.sandbox.execute("sleep 5", timeout=1)
        self.assertEqual(r.exit_code, 124)
        self.assertIn("timed out", r.output)

    def test_upload_download_binary(self) -> None:
        files = [
            ("/home/daytona/up/one.bin", live.BINARY),
            ("/home/daytona/up/deep/er/two.bin", live.BINARY[::-1]),
            ("/home/daytona/volume/shared.bin", b"\x00volume\xff"),
        ]
        res = self.sandbox.upload_files(files)
        self.assertTrue(all(isinstance(r, FileUploadResponse) for r in res))
        self.assertEqual([(r.path, r.error) for r in res], [(p, None) for p, _ in files])
        down = self.sandbox.download_files([p for p, _ in files])
        self.assertTrue(all(isinstance(d, FileDownloadResponse) for d in down))
        self.assertEqual([(d.path, d.content, d.error) for d in down], [(p, c, None) for p, c in files])
        # Shown by execute too: the bytes are the sandbox's files.
        self.assertEqual(self.sandbox.execute("cmp -s /home/daytona/up/one.bin /home/daytona/up/deep/er/two.bin; echo $?").output, "1\n")
        self.assertEqual(
            self.sandbox.execute("head -c 256 /home/daytona/up/one.bin | od -An -tx1 | tr -d ' \\n' | head -c 16").output,
            "0001020304050607",
        )

    def test_download_errors(self) -> None:
        self.sandbox.execute("mkdir -p /home/daytona/adir && echo x > /home/daytona/afile")
        down = self.sandbox.download_files(
            ["/home/daytona/nope.txt", "/home/daytona/adir", "../../etc/passwd", "/home/daytona/afile/below", "/home/daytona/afile"]
        )
        self.assertEqual(
            [d.error for d in down], ["file_not_found", "is_directory", "invalid_path", "file_not_found", None]
        )
        self.assertEqual(down[4].content, b"x\n")
        self.assertTrue(all(d.content is None for d in down[:4]))

    def test_upload_errors(self) -> None:
        self.sandbox.execute("mkdir -p /home/daytona/udir && echo x > /home/daytona/ufile")
        res = self.sandbox.upload_files(
            [
                ("../../etc/evil", b"x"),
                ("/home/daytona/udir", b"x"),
                ("/home/daytona/ufile/below", b"x"),
                ("/home/daytona", b"x"),
                ("/home/daytona/ok.bin", b"ok"),
            ]
        )
        self.assertEqual([r.error for r in res], ["invalid_path", "is_directory", "invalid_path", "invalid_path", None])

    def test_file_operations(self) -> None:
        s = self.sandbox
        w = s.write("/home/daytona/ops/a.py", "line1\nTODO one\nline3\nTODO two\n")
        self.assertIsNone(w.error)
        s.write("/home/daytona/ops/sub/b.py", "nothing\nTODO three\n")
        s.write("/home/daytona/ops/c.txt", "TODO four\n")

        r = s.read("/home/daytona/ops/a.py", offset=1, limit=2)
        self.assertIsNone(r.error)
        if not DEEPAGENTS:  # our own read; deepagents' formats its own way
            self.assertEqual(r.file_data["content"], "TODO one\nline3")
            self.assertEqual((r.start_line, r.end_line, r.total_lines, r.next_offset), (2, 3, 4, 3))
        self.assertIn("not found", (s.read("/home/daytona/ops/missing").error or ""))

        e = s.edit("/home/daytona/ops/a.py", "TODO", "DONE")
        self.assertIn("multiple", e.error or "")
        e = s.edit("/home/daytona/ops/a.py", "TODO", "DONE", replace_all=True)
        self.assertEqual((e.error, e.occurrences), (None, 2))
        self.assertEqual(s.download_files(["/home/daytona/ops/a.py"])[0].content, b"line1\nDONE one\nline3\nDONE two\n")
        self.assertIn("not found", s.edit("/home/daytona/ops/a.py", "absent", "x").error or "")

        ls = s.ls("/home/daytona/ops")
        self.assertIsNone(ls.error)
        self.assertEqual(
            sorted((e["path"], e.get("is_dir")) for e in ls.entries),
            [("/home/daytona/ops/a.py", False), ("/home/daytona/ops/c.txt", False), ("/home/daytona/ops/sub", True)],
        )

        g = s.grep("TODO", "/home/daytona/ops")
        self.assertIsNone(g.error)
        self.assertEqual(sorted((m["path"], m["line"]) for m in g.matches), [("/home/daytona/ops/c.txt", 1), ("/home/daytona/ops/sub/b.py", 2)])
        g = s.grep("TODO", "/home/daytona/ops", "*.py")
        self.assertEqual([(m["path"], m["text"]) for m in g.matches], [("/home/daytona/ops/sub/b.py", "TODO three")])
        g = s.grep("o", "/home/daytona/ops", max_count=1)
        self.assertEqual((len(g.matches), g.truncated), (1, True))

        gl = s.glob("**/*.py", "/home/daytona/ops")
        self.assertEqual(sorted(m["path"] for m in gl.matches), ["/home/daytona/ops/a.py", "/home/daytona/ops/sub/b.py"])
        gl = s.glob("*.txt", "/home/daytona/ops")
        self.assertEqual([m["path"] for m in gl.matches], ["/home/daytona/ops/c.txt"])

        d = s.delete("/home/daytona/ops/sub")
        self.assertIsNone(d.error)
        self.assertIn("not found", s.delete("/home/daytona/ops/sub").error or "")
        self.assertEqual(s.download_files(["/home/daytona/ops/sub/b.py"])[0].error, "file_not_found")


class FilesBackendLive(unittest.TestCase):
    def test_volume_backend(self) -> None:
        tb = live.client()
        self.addCleanup(tb.close)
        fb = FilesBackend(tb)
        root = "/" + live.unique("py-vol")
        res = fb.upload_files([(root + "/bin.dat", live.BINARY), ("../../x", b"x")])
        self.assertEqual([r.error for r in res], [None, "invalid_path"])
        down = fb.download_files([root + "/bin.dat", root + "/none", root])
        self.assertEqual(down[0].content, live.BINARY)
        self.assertEqual([d.error for d in down], [None, "file_not_found", "is_directory"])

        self.assertIsNone(fb.write(root + "/notes/a.md", "alpha\nneedle here\n").error)
        self.assertEqual(fb.read(root + "/notes/a.md").file_data["content"], "alpha\nneedle here")
        self.assertEqual(fb.edit(root + "/notes/a.md", "needle", "pin").occurrences, 1)
        self.assertEqual(sorted(e["path"] for e in fb.ls(root).entries), [root + "/bin.dat", root + "/notes"])
        self.assertEqual([m["path"] for m in fb.glob("**/*.md", root).matches], [root + "/notes/a.md"])
        g = fb.grep("pin", root)
        self.assertEqual([(m["path"], m["line"], m["text"]) for m in g.matches], [(root + "/notes/a.md", 2, "pin here")])
        self.assertIsNone(fb.delete(root).error)
        self.assertIn("not found", fb.ls(root).error or "")


if __name__ == "__main__":
    unittest.main()
