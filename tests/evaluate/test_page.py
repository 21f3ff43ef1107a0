"""The HTML comparison page: every image listed, every link resolves, and (in a real browser) it works."""

import shutil
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from gan_retouch.evaluate.page import PageRow, format_value, write_page
from gan_retouch.imaging import save_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
PSNR_VALUES = [31.5, 38.2, 29.9, 41.0, 35.5, 33.3, 36.7]  # deliberately not in name order


class LinkCollector(HTMLParser):
    """Every src/href in a page, and the data-name of every image row."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.rows: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "tr" and "image-row" in (values.get("class") or ""):
            self.rows.append(values["data-name"])


def make_page(folder: Path, page_size: int = 4) -> Path:
    """A page for 7 synthetic images and one model, with metrics (identity baseline first)."""
    rows = []
    for index, value in enumerate(PSNR_VALUES):
        name = f"face_{index:02d}.png"
        base = torch.rand(3, 1, 1) * 0.6 + 0.2
        paths = {}
        for kind in ("input", "model", "target", "diff"):
            image = (base + 0.15 * torch.rand(3, 40, 56)).clamp(0, 1)
            paths[kind] = f"images/{index:04d}_{kind}.png"
            save_image(image, folder / paths[kind])
        rows.append(PageRow(
            name=name, input=paths["input"], target=paths["target"], outputs={"model A": paths["model"]},
            diffs={"model A": paths["diff"]},
            metrics={"identity": {"psnr": value - 2.0, "ssim": 0.9}, "model A": {"psnr": value, "ssim": 0.95}},
        ))
    summary = {
        "identity": {"psnr": sum(PSNR_VALUES) / 7 - 2.0, "ssim": 0.9},
        "model A": {"psnr": sum(PSNR_VALUES) / 7, "ssim": 0.95},
    }
    return write_page(folder, rows, summary, title="test page", details={"split": "test"},
                      notes=["LPIPS: not shown in this test"], page_size=page_size)


def test_page_lists_every_image_and_every_link_resolves(tmp_path: Path) -> None:
    page = make_page(tmp_path)
    parser = LinkCollector()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.rows == [f"face_{i:02d}.png" for i in range(7)]
    assert len(parser.links) == 7 * 5  # input, input under the slider, output, target, diff
    for link in parser.links:
        assert "://" not in link and not link.startswith("//"), f"external link {link}"
        assert (tmp_path / link).is_file(), f"{link} does not exist"
    assert "link" not in parser.tags  # CSS and JS are inlined: the page is one file plus its images
    assert "LPIPS: not shown in this test" in page.read_text(encoding="utf-8")


def test_summary_marks_the_best_model_and_formats_values(tmp_path: Path) -> None:
    html = make_page(tmp_path).read_text(encoding="utf-8")
    assert f'<td class="best">{sum(PSNR_VALUES) / 7:.2f}</td>' in html
    assert format_value("psnr", float("nan")) == "–"
    assert format_value("ssim", 0.123456) == "0.1235"


@pytest.mark.browser
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no chromium + chromedriver installed "
                    "(apt-get install -y chromium chromium-driver)")
def test_page_in_headless_chromium(tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.common.by import By

    page = make_page(tmp_path / "results")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        driver.get(page.as_uri())
        assert driver.find_element(By.ID, "summary-table").is_displayed()
        assert len(driver.find_elements(By.CSS_SELECTOR, "#summary-table tbody tr")) == 2
        visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "tr.image-row") if r.is_displayed()]
        assert len(visible) == 4  # page_size=4: the rest are on page 2
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000

        # Show every row, load every lazy image, and check that all of them decoded.
        driver.execute_script(
            "document.querySelectorAll('tr.image-row').forEach(r => r.hidden = false);"
            "document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; });"
            "window.scrollTo(0, document.body.scrollHeight);"
        )
        loaded = "return Array.from(document.querySelectorAll('#image-table img')).every(i => i.complete && i.naturalWidth > 0)"
        deadline = time.monotonic() + 10
        while not driver.execute_script(loaded) and time.monotonic() < deadline:
            time.sleep(0.1)
        count = driver.execute_script("return document.querySelectorAll('#image-table img').length")
        assert count == 7 * 5
        assert driver.execute_script(loaded), "some images did not load"

        # Clicking the PSNR header sorts by the selected model's PSNR, best first; clicking again reverses.
        def order() -> list[str]:
            return [r.get_attribute("data-name") for r in driver.find_elements(By.CSS_SELECTOR, "tr.image-row")]

        assert order() == [f"face_{i:02d}.png" for i in range(7)]
        header = driver.find_element(By.CSS_SELECTOR, "thead [data-sort='psnr']")
        driver.execute_script("window.scrollTo(0, 0)")
        header.click()
        expected = [f"face_{i:02d}.png" for i in sorted(range(7), key=lambda i: -PSNR_VALUES[i])]
        assert order() == expected
        header.click()
        assert order() == expected[::-1]

        # The 100% viewer opens on an image click and shows it at its natural size.
        driver.find_element(By.CSS_SELECTOR, "tr.image-row:not([hidden]) img.zoomable").click()
        assert driver.find_element(By.ID, "zoom").is_displayed()
        assert driver.execute_script("const i = document.getElementById('zoom-image'); return i.width === i.naturalWidth")
    finally:
        driver.quit()
