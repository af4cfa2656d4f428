"""The README's ten-line example runs as written (against a real threadbox)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import unittest

from . import live

README = os.path.join(os.path.dirname(__file__), "..", "..", "..", "README.md")


class ReadmeExample(unittest.TestCase):
    def test_example_runs(self) -> None:
        with open(README) as f:
            text = f.read()
        section = text.split("## Use it from an agent runtime (Python)", 1)[1]
        code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
        self.assertLessEqual(len([l for l in code.splitlines() if l.strip()]), 10, "the example grew past ten lines")
        code = code.replace("http://127.0.0.1:8080", live.env("THREADBOX_URL")).replace("tb_...", live.env("THREADBOX_API_KEY"))
        code = code.replace('"conversation-42"', repr(live.unique("readme")))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            scope: dict[str, object] = {}
            exec(compile(code, "README.md", "exec"), scope)
        scope["tb"].close()  # type: ignore[attr-defined]
        self.assertEqual(out.getvalue(), "0 2\n")
        self.assertEqual(scope["report"].content, b"a,b\n1,2\n")  # type: ignore[attr-defined]


if __name__ == "__main__":
    unittest.main()
