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

import pandas as pd
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
    # the headline names each point by its parameter values, one column per swept parameter
    headline = html[html.index("<h2 id=\"headline\">"):html.index("<h2 id=\"headline\">") + 20_000]
    head = re.findall(r"<th scope='col'>([^<]*)</th>", headline)
    assert head[:3] == ["lipstick lightning sale discount", "lipstick countdown timer gain", "arm"], head[:4]
    assert "point" not in head
    rows = re.findall(r"<tr><td data-label='lipstick lightning sale discount'[^>]*><span class='v'>([^<]*)</span>"
                      r"</td><td data-label='lipstick countdown timer gain'[^>]*><span class='v'>([^<]*)</span>",
                      headline)
    assert {(d, g) for d, g in rows} == {(d, g) for d in ("0.1", "0.3", "0.5") for g in ("1", "4")}
    assert "methods" in html and "lightning_sale.discount</code>: 0.1, 0.3, 0.5" in html


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


# --------------------------------------------------- the regulator's example, as a referee reads it


#: A number in e-notation as Python prints it (the exponent always has its sign): "2e+02", "1.5e-05".
E_NOTATION = re.compile(r"\d(?:\.\d+)?[eE][+-]\d+")


@pytest.fixture(scope="module")
def dark_patterns(root, tmp_path_factory):
    """experiments/dark_patterns.toml (ten arms) with 2 replicates instead of 20, and its report."""
    res = run(root / "experiments/dark_patterns.toml", tmp_path_factory.mktemp("dp") / "dark_patterns",
              replicates=2, workers=1)
    return res, report(res)


def test_dark_patterns_report_reads_as_a_referee_wants(dark_patterns):
    """No e-notation; the methods name every tactic parameter and each arm's overrides; the deadline caption
    says, arm by arm, what the bunching test found, with its p values."""
    from fomolab import _format as fmt
    from fomolab.analysis import analyze

    res, rep = dark_patterns
    text = page_text(rep.path.read_text(encoding="utf-8"))
    assert E_NOTATION.findall(text) == []
    for part in ("gain 4", "arrival_boost 1", "kappa_per_s 0.01", "credibility 0.6", "base purchase rate 0.0003/s",
                 "countdown_timer.resets = true", "stock = 480", "scarcity_cue.displayed_stock = 3",
                 "social_proof.fabricated_rate_per_s = 0.25"):
        assert part in text, part
    a = analyze(res)
    cap = text[text.index("Purchases before the deadlines. "):]
    cap = cap[:cap.index(" Files:")]
    h = a.headline[a.headline.deadline_p.notna()]
    assert len(h) >= 2
    for r in h.itertuples():
        p = "p < 0.001" if r.deadline_p < 0.001 else f"p = {fmt.p_value(r.deadline_p)}"
        assert f"{r.arm} ({100 * r.deadline_share:.1f} % against {100 * r.deadline_expected_share:.1f} %, {p})" \
            in cap, (r.arm, cap)
    quiet = h[h.deadline_p >= 0.05]
    if len(quiet):
        assert "within chance" in cap and f"but not for {quiet.arm.iloc[0]}" in cap


def test_a_figure_says_when_its_pattern_is_not_significant():
    from fomolab.report import deadline_test

    h = pd.DataFrame({"point": [0], "arm": ["sale"], "deadline_share": [0.108], "deadline_expected_share": [0.1],
                      "deadline_p": [0.72]})
    assert deadline_test(h) == ("The binomial test of the share of purchases in the last 10 % of each window "
                                "against the share expected from exposure finds no significant bunching at the "
                                "5 % level for sale (10.8 % against 10.0 %, p = 0.720): the apparent rise towards "
                                "the deadline is within chance.")
    # the level and the window fraction are the analysis'
    assert "at the 10 % level" in deadline_test(h, conf_level=0.9) and "last 20 %" in deadline_test(h, last=0.2)
    assert deadline_test(h.assign(deadline_p=float("nan"))) == ""


def test_dark_patterns_figures_have_no_overlapping_text(dark_patterns):
    """Every figure of the report, as drawn for laptops and for phones: no tick label, title, legend entry
    or annotation overlaps another or is cut off at the figure's edge (matplotlib's own text boxes)."""
    from fomolab.analysis import analyze
    from fomolab.plot import effects_table, narrow
    from fomolab.report import _figures
    from test_plot import overlapping_texts, texts_outside

    res, _ = dark_patterns
    a = analyze(res, n_boot=0)
    figs = _figures(res, a, effects_table(a), [])
    assert len(figs) == 8
    for spec, draw in figs:
        fig = draw()
        assert overlapping_texts(fig) == [] and texts_outside(fig) == [], spec.name
        with narrow():
            fig = draw()
        assert overlapping_texts(fig) == [] and texts_outside(fig) == [], f"{spec.name} (narrow)"


#: Measured in the page after its load event: every table against the viewport and its scrolling box.
MEASURE = """JSON.stringify({
  viewport: window.innerWidth, scroll: document.documentElement.scrollWidth,
  tables: Array.from(document.querySelectorAll('table'), t => {
    const r = t.getBoundingClientRect(), box = t.closest('.scroll') || t.parentElement;
    return {heading: ((t.closest('div').previousElementSibling || {}).textContent || '').slice(0, 60), left: r.left,
            right: r.right, width: r.width, box: box.clientWidth, content: box.scrollWidth}; }),
  figures: Array.from(document.images, i => ({alt: i.alt, shown: i.getBoundingClientRect().width,
                                              natural: i.naturalWidth})),
  text: document.body.innerText})"""


def _screenshot_dir(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("FOMOLAB_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(("device", "width", "height", "scale"), [("laptop", 1280, 800, 1), ("phone", 390, 844, 2)])
def test_dark_patterns_report_fits_laptop_and_phone(device, width, height, scale, dark_patterns, tmp_path,
                                                    tmp_path_factory):
    """The ten-arm report in chromium at 1280 and 390 px: no table wider than the viewport or clipped in its
    box, nothing sticking out sideways, no e-notation in the page's text, and at 390 px the figures drawn for
    phones (their text at full size).  Screenshots and measured widths go to FOMOLAB_SCREENSHOTS (default:
    pytest's base temporary folder, /screenshots), printed."""
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not found (python3 tasks.py test installs Debian's chromium with apt-get)")
    _, rep = dark_patterns
    browser = Chromium(exe, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=s)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": device == "phone"},
                     session=s)
        browser.send("Page.navigate", {"url": rep.path.as_uri()}, session=s)
        browser.wait_for("Page.loadEventFired")
        m = json.loads(browser.send("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True},
                                    session=s)["result"]["value"])
        data = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=s)["data"]
    finally:
        browser.close()
    folder = _screenshot_dir(tmp_path_factory)
    shot = folder / f"dark_patterns-{width}px.png"
    shot.write_bytes(base64.b64decode(data))
    summary = {"viewport": m["viewport"], "page_width": m["scroll"],
               "tables": [{k: round(v) if isinstance(v, float) else v for k, v in t.items()} for t in m["tables"]],
               "figures": [{k: round(v) if isinstance(v, float) else v for k, v in f.items()} for f in m["figures"]]}
    (folder / f"dark_patterns-{width}px.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"screenshot: {shot}; widths: {shot.with_suffix('.json')}")
    assert m["viewport"] == width and m["scroll"] <= width, summary
    assert len(m["tables"]) >= 7  # arms, the two headline tables, effects, two consumer impact tables, provenance
    for t in m["tables"]:
        assert t["width"] <= width and t["left"] >= 0 and t["right"] <= width, t
        assert t["content"] <= t["box"] + 1, f"table clipped in its box (scrolls sideways): {t}"
    assert E_NOTATION.findall(m["text"]) == []
    assert len(m["figures"]) == 8
    for f in m["figures"]:
        assert f["shown"] <= width, f
        if device == "phone":  # the phone figure, shown at (about) its own size: text as drawn
            assert f["natural"] == pytest.approx(96 * 3.9, abs=2) and f["shown"] / f["natural"] > 0.9, f
        else:
            assert f["natural"] > 600, f


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
