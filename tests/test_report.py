"""`fomolab report`: the page, its figure files, and the page in a real browser.

The browser test drives Debian's ``chromium`` headless (``python3 tasks.py
test`` installs it with apt-get when it is missing); it is skipped only when no
chromium can be found.  Nothing is downloaded at run time.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fomolab import run
from fomolab.cli import main
from fomolab.report import report


def page_text(page: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities decoded, runs of white space one space."""
    import html

    body = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S).replace("<wbr>", "")
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split()).replace(" )", ")").replace("( ", "(")


@pytest.fixture(scope="module")
def flagship(root, tmp_path_factory):
    """The flagship experiment with 2 replicates (all four arms, stock, scarcity cue)."""
    return run(root / "experiments/lightning_sale.toml", tmp_path_factory.mktemp("ls") / "lightning_sale",
               replicates=2, workers=1)


@pytest.fixture(scope="module")
def flagship_report(flagship):
    return report(flagship)


def test_cli_report_on_flagship(flagship, flagship_report, capsys):
    page = flagship_report.path
    assert page == flagship.path / "report" / "index.html"
    names = {"purchase_rate", "purchase_incidence", "time_to_purchase", "repeat_purchases", "forest", "deadline",
             "harm", "impulsiveness"}
    for n in names:
        for ext in ("png", "svg"):
            f = flagship.path / "report" / "figures" / f"{n}.{ext}"
            assert f.is_file() and f.stat().st_size > 5_000, f
    assert (flagship.path / "report/figures/purchase_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text()
    # every figure embedded (no external image), with a caption; the page is self-contained
    imgs = re.findall(r"<img src='([^']*)'", html)
    assert len(imgs) == len(names)
    assert all(i.startswith("data:image/svg+xml;base64,") for i in imgs)
    for i in imgs:
        assert base64.b64decode(i.split(",", 1)[1]).lstrip().startswith(b"<?xml")
    assert html.count("<figcaption>") == len(names)
    assert "<meta name=\"viewport\"" in html and "max-width" in html and "width: 100%" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    # methods from the spec, headline table, provenance from the manifest
    for text in ("Methods", "60 min", "lipstick", "sale_timer_scarcity", "2 replicates", "master seed 7",
                 "Headline", "hazard ratio", "Provenance", flagship.manifest["spec_hash"]):
        assert text in html, text
    # the CLI rewrites the report in place, runs untouched
    before = sorted(p.name for p in (flagship.path / "runs").iterdir())
    assert main(["report", str(flagship.path)]) == 0
    out = capsys.readouterr().out
    assert "index.html" in out
    assert sorted(p.name for p in (flagship.path / "runs").iterdir()) == before
    assert not [p for p in flagship.path.iterdir() if p.name.startswith(".report")], "temporary folders left"


def test_cli_report_on_sweep_example(root, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["run", str(root / "experiments/discount_timer_sweep.toml"), "--out", str(out),
                 "--replicates", "2", "--workers", "1", "-q"]) == 0
    assert main(["report", str(out)]) == 0
    figs = {p.name for p in (out / "report/figures").iterdir()}
    for n in ("sweep_metrics", "sweep_heatmap", "forest", "purchase_rate"):
        assert {f"{n}.png", f"{n}.svg"} <= figs
    html = (out / "report/index.html").read_text()
    assert "grid sweep over 2 parameters" in html and "6 points" in html


@pytest.mark.parametrize("bad", ["missing", "empty", "file"])
def test_cli_report_bad_folder(bad, tmp_path, capsys):
    target = tmp_path / "x"
    if bad == "empty":
        target.mkdir()
    elif bad == "file":
        target.write_text("hello")
    assert main(["report", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fomolab: error:") and str(target) in err[0]
    assert not (tmp_path / "x" / "report").exists()


# --------------------------------------------------------------------- the browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """Headless chromium driven over the DevTools protocol on a pipe (fds 3 and 4).

    No network port and no extra package: commands and answers are JSON
    messages separated by NUL bytes (``--remote-debugging-pipe``).  Page-level
    device emulation gives true phone widths (a headless window is at least
    500 px wide).
    """

    def __init__(self, exe: str, profile: Path) -> None:
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()

        def fds() -> None:  # in the child: its fd 3 reads commands, fd 4 writes answers
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(timeout)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._read(timeout)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def _read(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)


@pytest.fixture(scope="module")
def served(flagship_report, tmp_path_factory):
    """The report folder on http://127.0.0.1 (only), as a user would serve it."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(flagship_report.path.parent, site / "report")
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/report/index.html"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


#: Evaluated in the page after its load event.
PROBE = """JSON.stringify({
  imgs: Array.from(document.images, i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0,
                                           shown: Math.round(i.getBoundingClientRect().width)})),
  viewport: window.innerWidth, scroll: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight})"""


@pytest.mark.parametrize(("device", "width", "height", "scale"), [("laptop", 1280, 800, 1), ("phone", 390, 844, 2)])
def test_page_in_headless_chromium(device, width, height, scale, served, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not found (python3 tasks.py test installs Debian's chromium with apt-get)")
    browser = Chromium(exe, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=s)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": device == "phone"},
                     session=s)
        nav = browser.send("Page.navigate", {"url": served}, session=s)
        assert "errorText" not in nav, nav
        browser.wait_for("Page.loadEventFired")
        probe = json.loads(browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True},
                                        session=s)["result"]["value"])
        shot = tmp_path / f"report-{device}-{width}px.png"
        data = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=s)["data"]
        shot.write_bytes(base64.b64decode(data))
        events = list(browser.events)
    finally:
        browser.close()
    print(f"screenshot: {shot}")
    assert len(probe["imgs"]) == 8  # the flagship has eight figures
    for img in probe["imgs"]:
        assert img["ok"], f"image did not load: {img}"
        assert 0.5 * width < img["shown"] <= width, img  # fills the column, never wider than the screen
    errors = [e for e in events
              if e.get("method") in ("Runtime.exceptionThrown", "Network.loadingFailed")
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] in ("error", "warning"))]
    assert errors == []
    # nothing sticks out sideways at this width (wide tables scroll inside their own box)
    assert probe["scroll"] <= probe["viewport"] == width, probe
    assert shot.stat().st_size > 50_000


# ------------------------------------------------------------- one source per number


def test_captions_follow_the_analysis_parameters(flagship, tmp_path):
    """The level and the deadline fraction in captions and headers are the analysis', not fixed text."""
    from fomolab.analysis import analyze

    a = analyze(flagship, conf_level=0.9, last=0.2, n_boot=0)
    rep = report(flagship, out=tmp_path / "r90", analysis=a)
    html = rep.path.read_text()
    assert "95 %" not in html
    assert "hazard ratio (90 % CI)" in html and "with 90 % pointwise bands" in html
    assert "purchases in last 20 % of window (expected)" in html


def test_report_from_an_analysis_fits_no_model(flagship, tmp_path, monkeypatch):
    """Given the analysis, the report draws every figure and table with every model fit disabled."""
    import importlib

    import SALib.analyze.sobol
    import statsmodels.base.model

    import fomolab.attribution
    from fomolab.analysis import analyze

    a = analyze(flagship, n_boot=0)

    def refuse(*args, **kw):
        raise AssertionError("the report computed a statistic")

    monkeypatch.setattr(statsmodels.base.model.LikelihoodModel, "fit", refuse)
    monkeypatch.setattr(SALib.analyze.sobol, "analyze", refuse)
    for mod, name in (("cox", "cox"), ("kaplan_meier", "kaplan_meier"), ("compare", "binary_logit"),
                      ("compare", "compare_arms"), ("conversion", "conversion"),
                      ("competing", "cumulative_incidence"), ("competing", "restricted_time_in_state"),
                      ("recurrent", "mean_cumulative_function")):
        monkeypatch.setattr(importlib.import_module(f"fomolab.stats.{mod}"), name, refuse)
    monkeypatch.setattr(fomolab.attribution, "impact", refuse)
    monkeypatch.setattr(fomolab.attribution, "attribute", refuse)
    rep = report(flagship, out=tmp_path / "r", analysis=a)
    assert not rep.notes and len(rep.figures) == 2 * 8
    html = page_text(rep.path.read_text())
    # the effects table above the forest plot is the analysis' arms table
    hr = a.arms[a.arms.measure == "hazard_ratio"].iloc[0]
    from fomolab import _format

    assert _format.estimate(hr.estimate, hr.ci_lower, hr.ci_upper, 4) in html


def test_headline_of_the_page_agrees_with_the_analysis(flagship, tmp_path):
    """The page's headline shows the share who buy by the horizon and the restricted mean time to purchase,
    their differences with intervals, and no unreached median; the numbers are the analysis' own."""
    from fomolab import _format as fmt
    from fomolab.analysis import analyze

    a = analyze(flagship, n_boot=0)
    html = page_text(report(flagship, out=tmp_path / "r", analysis=a).path.read_text())
    h = a.headline.set_index("arm")
    horizon = f"{a.horizon:,.0f} s"
    assert f"bought within {horizon}, %" in html and f"mean time to purchase within {horizon}, s" in html
    for arm in ("sale", "sale_timer"):
        r = h.loc[arm]
        assert fmt.estimate(100 * r.cuminc, 100 * r.cuminc_ci_lower, 100 * r.cuminc_ci_upper) in html
        assert fmt.estimate(100 * r.cuminc_diff, 100 * r.cuminc_diff_ci_lower, 100 * r.cuminc_diff_ci_upper) in html
        assert fmt.estimate(r.rmst_diff_s, r.rmst_diff_ci_lower, r.rmst_diff_ci_upper) in html
    # with 2 replicates the flagship's Kaplan–Meier medians are not reached with viewers at risk
    assert h.median_s.isna().all() and (h.median_note != "").all()
    assert "Buying before leaving" in html and "Repeat purchases" in html


def test_effect_sections_show_the_analysis_tables(flagship, tmp_path):
    """What each arm changes, for whom, per product and over the stream: the analysis' numbers, on the page."""
    from fomolab import _format as fmt
    from fomolab.analysis import analyze

    a = analyze(flagship, n_boot=0)
    raw = report(flagship, out=tmp_path / "r", analysis=a).path.read_text()
    html = page_text(raw)
    for ident in ("changes", "for_whom", "rates", "ph"):
        assert f"<h2 id='{ident}'>" in raw
    ch = a.changes.set_index(["arm", "measure"])
    for arm in ("sale", "sale_timer"):
        r = ch.loc[(arm, "buyers")]
        assert fmt.estimate(r.change, r.ci_lower, r.ci_upper, 4) in html
        r = ch.loc[(arm, "conversion")]
        assert fmt.estimate(100 * r.change, 100 * r.ci_lower, 100 * r.ci_upper, 3) in html
    rt = a.rates.iloc[0]
    assert fmt.estimate(rt.rate_ratio, rt.ci_lower, rt.ci_upper, 4) in html
    fw = a.for_whom.iloc[0]
    assert fmt.estimate(100 * fw.cuminc_diff, 100 * fw.cuminc_diff_ci_lower, 100 * fw.cuminc_diff_ci_upper) in html
    assert "properties of the model's coupling" in html
    # the windowed hazard ratios appear exactly when proportional hazards fail on the stream clock
    failed = not a.ph[a.ph.time_scale == "stream"].proportional.all()
    assert ("<h2 id='hr_windows'>" in raw) == failed
    if failed:
        w = a.hr_windows.dropna(subset=["ci_lower"]).iloc[0]
        assert fmt.estimate(w.hazard_ratio, w.ci_lower, w.ci_upper, 4) in html


def test_figures_and_tables_of_the_page_agree(flagship, tmp_path):
    """The forest plot draws the headline's hazard and odds ratios, and the incidence figure reaches the
    headline's share who buy at the horizon."""
    import numpy as np

    from fomolab.analysis import analyze
    from fomolab.plot.effects import effects_table

    a = analyze(flagship, n_boot=0)
    h = a.headline.set_index("arm")
    fx = effects_table(a).set_index(["arm", "measure"])
    for arm in ("sale", "sale_timer", "sale_timer_scarcity"):
        for m, pre in (("hazard_ratio", "hr"), ("odds_ratio", "or")):
            got = fx.loc[(arm, m), ["estimate", "ci_lower", "ci_upper"]].to_numpy(float)
            np.testing.assert_allclose(got, h.loc[arm, [m, f"{pre}_ci_lower", f"{pre}_ci_upper"]].to_numpy(float),
                                       rtol=1e-12)
    at = a.incidence[a.incidence.horizon].set_index("arm")
    for arm in h.index:
        assert at.loc[arm, "cuminc"] == pytest.approx(h.loc[arm, "cuminc"], rel=1e-12)
    # the change table is the runs' own paired differences
    ch = a.changes.set_index(["arm", "measure"])
    runs = flagship.runs.assign(arm=lambda d: d.arm.astype(str))
    per = runs.pivot_table(index="replicate", columns="arm", values="buyers")
    assert ch.loc[("sale", "buyers"), "change"] == pytest.approx((per["sale"] - per["control"]).mean())
