"""The docs site builds with ``mkdocs build --strict``: a warning (a broken link, a page missing
from the nav, a docstring the API reference cannot render) fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ._markdown import ROOT


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in ("index.html", "guide/migration/index.html", "reference/api/client/index.html"):
        assert (site / page).is_file(), f"{page} was not built"
    api = (site / "reference" / "api" / "client" / "index.html").read_text(encoding="utf-8")
    assert "ingest_all" in api, "the API reference lost the client's methods"
