"""``reports/index.html`` from the committed metrics and pictures: one self-contained page, opened in headless Chromium.

The browser test needs Debian's Chromium (``make test`` installs it where it runs as root) and Playwright (a test
dependency); where Chromium is missing it skips and says so.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cnnrnn.registry import APPLICATIONS
from cnnrnn.reporting import write_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Waits for every picture, then says which did not load (a broken data: URL raises no console message).
IMAGES_NOT_LOADED = """async () => {
  const images = Array.from(document.images);
  await Promise.all(images.map(img => img.complete ? null
    : new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  return images.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.alt);
}"""


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The report built by the report stage's code from a copy of the committed metrics, plots and params."""
    root = tmp_path_factory.mktemp("report")
    for name in ("metrics", "plots"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy2(ROOT / "params.yaml", root / "params.yaml")
    write_report(root)
    return root / "reports" / "index.html"


def pictures() -> list[Path]:
    return sorted(ROOT.glob("plots/*/*.png"))


def test_page_is_self_contained_with_every_picture_and_the_comparison(page):
    text = page.read_text()
    sources = re.findall(r'\ssrc="([^"]*)"', text)
    assert len(sources) == len(pictures()) > 0
    assert all(s.startswith("data:image/png;base64,") for s in sources)  # nothing to fetch: the file is the report
    assert not re.search(r'(href|src)="(https?:|//|file:)', text)
    comparison = text[text.index("CNNs and RNNs, measured here"):text.index('<h2 id="classify"')]
    for app in APPLICATIONS.values():
        row = comparison[comparison.index(f'<a href="#{app.name}">'):]
        row = row[:row.index("</tr>")]
        assert app.reference.split(":")[0] in row  # the published figure
        for picture in (ROOT / "plots" / app.name).glob("*.png"):
            assert f'href="#{app.name}-{picture.stem}"' in row and f'id="{app.name}-{picture.stem}"' in text
    assert "rnn_vs_cnn_contrast_unseen_pair_accuracy" in comparison  # word order: the RNN against the CNN
    assert "[0." in comparison  # intervals
    assert text.count('class="missed"') >= 1  # a missed bar is marked, not hidden


def test_page_renders_in_headless_chromium_without_errors(page, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is a test dependency: pip install -e '.[test]'")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing: Debian's chromium package needs root to install "
                    "(`make test` installs it when run as root: apt-get install chromium)")
    problems = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu", "--disable-quic"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type in ("error", "assert") else None)
            tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            tab.goto(page.as_uri(), wait_until="load")
            not_loaded = tab.evaluate(IMAGES_NOT_LOADED)
            shown = tab.evaluate("document.images.length")
            screenshot = tmp_path / "index.png"
            tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert not_loaded == [] and shown == len(pictures())
    assert screenshot.stat().st_size > 100_000  # a page of tables and pictures, not a blank one
