"""A real chromium (Debian's, at /usr/bin/chromium: `.ci/run` installs it) driven by
Playwright for Python; Playwright's own browser download is never used."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists() or shutil.which("chromium"), (
        "the console's browser tests need Debian's chromium: apt-get install -y chromium"
    )
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()
