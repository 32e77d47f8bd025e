"""What every browser test shares: Debian's Chromium driven by Playwright for Python.

Importing this module skips the importing test module when Playwright or Chromium is missing (CI
installs both: ``apt-get install chromium``, the ``test`` extra has Playwright). The ``browser``
fixture itself is in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

try:
    from playwright.sync_api import expect, sync_playwright  # noqa: F401 - re-exported for the tests
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if sync_playwright is None or not Path(CHROMIUM).exists():
    pytest.skip(
        f"browser tests need Playwright for Python and Chromium at {CHROMIUM} "
        "(pip install playwright; apt-get install chromium)",
        allow_module_level=True,
    )

# Every securitypolicyviolation event of the page, kept for the end of the test.
RECORD_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
              "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")



def watch(page, problems: list[str], record_csp: bool = False) -> None:
    """Collect CSP violations (console errors) and uncaught script errors of ``page`` into ``problems``;
    with ``record_csp`` also keep every violation event in ``window.__csp`` (see :func:`csp_events`)."""
    if record_csp:
        page.add_init_script(RECORD_CSP)
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def csp_events(page) -> list[str]:
    """The violation events recorded since the page loaded (``watch(..., record_csp=True)``)."""
    return page.evaluate("window.__csp || []")
