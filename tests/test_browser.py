"""The 3D helix HTML renders offline in headless Chromium (Debian's ``chromium``, installed by .ci/run).

Chromium gets no network (a proxy that does not exist), so the page renders only if plotly.js is embedded.
Skipped, with the reason, when chromium is not installed.
"""

import shutil
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_helix_html_renders_in_headless_chromium(tmp_path):
    from linebreak.plots.helix import helix_figures

    c = np.arange(4, 60)
    coords = np.column_stack([c / 10, np.cos(2 * np.pi * c / 12), np.sin(2 * np.pi * c / 12)])
    files = helix_figures(coords, c, [0.5, 0.3, 0.2], "constructed helix, period 12", tmp_path / "h")
    html = next(f for f in files if f.suffix == ".html")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--use-gl=swiftshader",
           "--enable-unsafe-swiftshader", "--proxy-server=127.0.0.1:9", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=15000", "--dump-dom", html.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "plotly-graph-div" in dom
    assert "js-plotly-plot" in dom, "plotly did not initialise the div"  # class added by Plotly.newPlot
    assert "main-svg" in dom and "gl-container" in dom  # the figure's SVG layers and its WebGL scene
    assert "constructed helix, period 12" in dom  # the title was drawn into the SVG
