"""Open an HTML file in Debian's headless Chromium (through Playwright) and report what went wrong.

Used by the report test; also a script:  python tests/browser.py REPORT.html [SCREENSHOT.png]
"""
import shutil
import sys
from pathlib import Path
from typing import Dict, Optional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As this workplace's probe starts it: no sandbox (root), no GPU, nothing fetched in the background.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


# The WCAG 2 contrast ratio of each element's text colour on its background colour, as computed
# by the browser.
CONTRAST_JS = """els => els.map(e => {
  const style = getComputedStyle(e);
  const rgb = s => s.match(/\\d+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const a = lum(rgb(style.color)), b = lum(rgb(style.backgroundColor));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
})"""


def render(path: Path, screenshot: Optional[Path] = None) -> Dict:
    """Load `path` in headless Chromium. RETURNS console errors, page errors, failed requests,
    requests that left the file (a self-contained report makes none), images that did not
    decode, the displaCy entity marks and the page's text length."""
    from playwright.sync_api import sync_playwright

    found = {"console_errors": [], "page_errors": [], "failed_requests": [], "outside_requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: m.type == "error" and found["console_errors"].append(m.text))
        page.on("pageerror", lambda e: found["page_errors"].append(str(e)))
        page.on("requestfailed", lambda r: found["failed_requests"].append(r.url))
        page.on("request", lambda r: not r.url.startswith(("file:", "data:")) and found["outside_requests"].append(r.url))
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        found["images"] = page.eval_on_selector_all("img", "els => els.length")
        found["broken_images"] = page.eval_on_selector_all(
            "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.alt)")
        found["entity_marks"] = page.eval_on_selector_all("mark.entity", "els => els.length")
        contrasts = page.eval_on_selector_all("table.confusion td", CONTRAST_JS)
        found["confusion_cells"] = len(contrasts)
        found["min_confusion_contrast"] = min(contrasts, default=None)
        found["text_length"] = len(page.inner_text("body"))
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return found


if __name__ == "__main__":
    result = render(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(result)
    problems = [k for k in ("console_errors", "page_errors", "failed_requests", "outside_requests", "broken_images")
                if result[k]]
    sys.exit(1 if problems else 0)
