"""The `rerinv timing` page in a real browser: headless Chromium lays out timing.html at a
laptop width (1280 px) and a narrow one (600 px), and a script in the page measures every
element; nothing may stick out of the window, no table or figure may be wider than its
container and no image may be drawn wider than its column.

Skipped when Chromium is not installed, unless RERINV_REQUIRE_BROWSER=1 (CI sets it), which
turns the skip into a failure.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from rerinv.system import load_arch, load_workload
from rerinv.system.report import timing_study, write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTHS = (1280, 600)  # a laptop, a narrow window (headless Chromium keeps >= 500)

#: measures overflow after layout and writes it into the DOM, which --dump-dom prints
PROBE = """
<script>
window.addEventListener('load', () => {
  const width = document.documentElement.clientWidth, bad = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    const name = el.tagName + (el.alt ? '[' + el.alt + ']' : '');
    if (r.width > 0 && (r.right > width + 1 || r.left < -1)) bad.push(name + ' outside the window');
    if (['TABLE', 'FIGURE', 'IMG'].includes(el.tagName)) {
      const box = el.parentElement.clientWidth;
      if (el.scrollWidth > el.clientWidth + 1) bad.push(name + ' scrolls');
      if (r.width > box + 1) bad.push(name + ' wider than its container');
    }
    if (el.tagName === 'IMG' && !el.complete) bad.push(name + ' not loaded');
  }
  const images = [...document.images].map(i => [i.alt, i.naturalWidth, i.width]);
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({width: width, page: document.documentElement.scrollWidth,
                                    bad: bad, images: images});
  document.body.appendChild(out);
});
</script>
"""


def _browser():
    found = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if found is None:
        if os.environ.get("RERINV_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "RERINV_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)"
            )
        pytest.skip("needs headless Chromium (apt-get install chromium); CI sets "
                    "RERINV_REQUIRE_BROWSER=1 to require it")  # fmt: skip
    return found


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """timing.html of three networks, a sweep and the tornado, with the probe appended."""
    out = tmp_path_factory.mktemp("timing")
    arch = load_arch("repast")
    workloads = [load_workload(n) for n in ("resnet50", "bert-base", "mnist-autoencoder")]
    study = timing_study(arch, workloads, None, sweeps={"t_inv": [1.0, 10.0, 100.0]})
    study["command"], study["software"] = "test", {}
    paths = write_report(study, out)
    probed = out / "probed.html"
    probed.write_text(paths["html"].read_text() + PROBE)
    return probed


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_overflows_the_page(page, width, tmp_path):
    browser = _browser()
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},900",
               "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not run: {done.stderr[-2000:]}"
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["width"] <= width and probe["width"] > 0.5 * width, probe["width"]
    assert probe["page"] <= probe["width"], (
        f"page {probe['page']} px in a {probe['width']} px window"
    )
    assert not probe["bad"], probe["bad"]
    assert {"speedup", "phases", "energy", "tornado", "sweep_t_inv"} <= {
        i[0] for i in probe["images"]
    }
    for alt, natural, shown in probe["images"]:
        assert natural > 0 and shown <= probe["width"], (alt, natural, shown)
