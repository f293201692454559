"""The explain page (``render_explain_html``), the inspect card's Explanation panel, and a real browser render.

Every score below is made up (synthetic: hand-written numbers, not measured), and the
evidence is the synthetic toy set of ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from interp_agent.core.artifacts import clean_json
from interp_agent.core.errors import ValidationError
from interp_agent.core.explain.evidence import Contexts, EvidenceSet
from interp_agent.core.explain.explanations import Author, Explanation, Method, Metric, Score, ScoredExplanation
from interp_agent.core.reports import render_html
from interp_agent.core.reports.explain_html import (
    EXAMPLE_CAPS,
    anchors,
    render_explain_html,
    report_explanation,
    token_spans,
)
from interp_agent.core.reports.svg import counts_histogram_svg

HOSTILE = '<script>alert("x")</script>'
ODD_ID = 'toy:"odd" <id>'
VERDICT = {"verdict": "causal", "effect": 0.42, "ci95": [0.3, 0.55]}
BROWSER_ENV = "INTERP_AGENT_NO_BROWSER"
SIZE = (1280, 2000)


# --- synthetic inputs -----------------------------------------------------------------------


def _score(method: Method, auroc: float, *, judge: str | None = None, margin_lo: float = 0.3) -> Score:
    """A made-up (synthetic) score: every number is hand-written."""
    provenance = "interventional" if method == "output" else "held_out_text"
    return Score(method, Metric(auroc, (auroc - 0.05, auroc + 0.04)), Metric(0.81, (0.74, 0.86)),
                 Metric(0.77, (0.7, 0.83)), 41, 59, Metric(0.52, (0.45, 0.58)), Metric(0.5, (0.43, 0.57)),
                 Metric(auroc - 0.52, (margin_lo, auroc - 0.45)), judge, provenance, null_feature="toy:food",
                 note="synthetic score")


def _explained() -> dict[str, ScoredExplanation]:
    """Synthetic explanations of two features: one that beats random, one that does not."""
    weather = Explanation("toy:weather", f"weather words such as rain and fog {HOSTILE}",
                          Author("agent", "mcp agent", 'synthetic "test" author'))
    food = Explanation("toy:food", "food words", Author("local_tokens", "token-frequency v1"))
    return {
        "toy:weather": ScoredExplanation(weather, (
            _score("embedding", 0.91), _score("detection", 0.86, judge="smollm2-135m (weak local judge)"),
            _score("output", 0.7))),
        "toy:food": ScoredExplanation(food, (_score("embedding", 0.55, margin_lo=-0.05),)),
    }


def _hostile(evidence: EvidenceSet) -> EvidenceSet:
    """The toy evidence with hostile and whitespace tokens in toy:weather's top context, and an oddly named feature."""
    weather = evidence.features["toy:weather"]
    top = weather.select("top")[0].context
    tokens = [list(row) for row in evidence.contexts.tokens]
    tokens[top][1:5] = [HOSTILE, "\n", "\t", "\u202e"]
    contexts = Contexts(evidence.contexts.token_ids, tokens, evidence.contexts.held_out, evidence.contexts.passage)
    features = dict(evidence.features)
    features["toy:weather"] = replace(weather, promoted=((" rain", 1.5), ("<img src=x onerror=alert(1)>", 0.9)),
                                      suppressed=((" bread", -0.8),))
    features[ODD_ID] = replace(evidence.features["toy:food"], feature_id=ODD_ID)
    return EvidenceSet(evidence.manifest, contexts, features)


def _page(evidence: EvidenceSet, **kwargs) -> str:
    return render_explain_html(_hostile(evidence), _explained(), verdicts={"toy:weather": VERDICT}, **kwargs)


def _cards(page: str) -> dict[str, str]:
    """Each card's HTML by its anchor."""
    parts = page.split('<article class="feature feature-card" id="')[1:]
    return {p.split('"', 1)[0]: p.split("</article>", 1)[0] for p in parts}


class _Tags(HTMLParser):
    """Collects element names and attribute names."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record the element and its attribute names."""
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


# --- the page -------------------------------------------------------------------------------


def test_page_has_one_card_per_feature_with_stable_anchors(evidence: EvidenceSet) -> None:
    page = _page(evidence)
    cards = _cards(page)
    assert page.count('class="feature feature-card"') == 5
    assert list(cards) == ["feature-toy-weather", "feature-toy-food", "feature-toy-numbers", "feature-toy-dead",
                           "feature-toy-odd-id"]
    for anchor in cards:
        assert f'href="#{anchor}"' in page
    assert page == _page(evidence)


def test_colliding_slugs_get_numbered_anchors() -> None:
    assert anchors(["a:b", "a-b", "a b", "::"]) == {"a:b": "feature-a-b", "a-b": "feature-a-b-2",
                                                    "a b": "feature-a-b-3", "::": "feature-x"}


def test_feature_ids_choose_and_order_the_cards(evidence: EvidenceSet) -> None:
    page = render_explain_html(evidence, _explained(), feature_ids=["toy:food", "toy:weather", "toy:food"])
    assert list(_cards(page)) == ["feature-toy-food", "feature-toy-weather"]
    with pytest.raises(ValidationError, match="toy:wether"):
        render_explain_html(evidence, _explained(), feature_ids=["toy:wether"])


def test_header_names_model_hookpoint_corpus_and_split_sizes(evidence: EvidenceSet) -> None:
    page = _page(evidence)
    n_held = int(evidence.contexts.held_out.sum())
    header = page.split('<h2 id="summary">')[0]
    assert "toy/synthetic" in header and "blocks.0.hook_resid_post" in header
    assert f"{len(evidence.contexts) - n_held} explain / {n_held} held-out" in header
    assert "240 × 14 tokens" in header and "made-up sentences and activations" in header
    assert 'class="synthetic-banner"' in header
    real = replace(evidence.manifest, corpus={"name": "wiki", "synthetic": False})
    assert 'class="synthetic-banner"' not in render_explain_html(replace(evidence, manifest=real), {})


def test_hostile_text_is_escaped_everywhere(evidence: EvidenceSet) -> None:
    page = _page(evidence)
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not any(a.startswith("on") for a in parser.attrs)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "toy:&quot;odd&quot; &lt;id&gt;" in page
    assert "synthetic &quot;test&quot; author" in page


def test_page_references_nothing_outside_itself(evidence: EvidenceSet) -> None:
    page = _page(evidence).lower()
    for needle in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert needle not in page.replace("&lt;img src=x", ""), needle


def test_summary_shows_auroc_null_margin_and_beats_random(evidence: EvidenceSet) -> None:
    page = _page(evidence)
    summary = page.split('<table class="summary">')[1].split("</table>")[0]
    rows = summary.split("<tr>")[2:]
    assert "0.91" in rows[0] and "[0.86, 0.95]" in rows[0] and "0.52" in rows[0] and "0.39" in rows[0]
    assert 'class="yes"' in rows[0] and 'class="no"' in rows[1]
    assert "AUROC (detection)" in summary and "AUROC (output)" in summary and "AUROC (fuzzing)" not in summary
    assert "not explained" in rows[2]
    only_embedding = render_explain_html(evidence, {"toy:food": _explained()["toy:food"]})
    assert "AUROC (detection)" not in only_embedding


def test_card_shows_every_score_with_nulls_judge_and_provenance(evidence: EvidenceSet) -> None:
    card = _cards(_page(evidence))["feature-toy-weather"]
    for text in ("embedding", "detection", "output", "[0.86, 0.95]", "null: another feature's explanation",
                 "null: shuffled labels", "[0.43, 0.57]", "margin over that null", "smollm2-135m (weak local judge)",
                 "tag-held_out_text", "tag-interventional", "41 / 59", "agent · mcp agent", "synthetic score"):
        assert text in card, text
    assert card.count('class="yes"') == 3


def test_verdict_appears_only_on_its_feature(evidence: EvidenceSet) -> None:
    cards = _cards(_page(evidence))
    weather = cards["feature-toy-weather"]
    assert "Causal verdict" in weather and "<b>causal</b>" in weather and "[0.3, 0.55]" in weather
    assert "Causal verdict" not in cards["feature-toy-food"]


def test_card_shows_density_activations_histogram_and_output_tokens(evidence: EvidenceSet) -> None:
    weather = evidence.features["toy:weather"]
    card = _cards(_page(evidence))["feature-toy-weather"]
    assert f"{weather.density:.3g}" in card and f"{weather.max_activation:.3g}" in card
    assert f"{weather.mean_activation:.3g}" in card
    assert card.count("<svg") == 1 and card.count("<rect") == int(np.count_nonzero(weather.hist_counts))
    promoted = card.split("Promotes")[1].split("Suppresses")[0]
    assert " rain</code> 1.5" in promoted and "-0.8" in card.split("Suppresses")[1]


def test_examples_are_capped_labelled_by_split_and_random_ones_collapsed(evidence: EvidenceSet) -> None:
    card = _cards(_page(evidence))["feature-toy-weather"]
    per_split = EXAMPLE_CAPS["top"] + EXAMPLE_CAPS["quantile"] + EXAMPLE_CAPS["random"]
    assert 0 < card.count('<li class="example">') <= 2 * per_split
    assert card.count('class="split split-explain"') > 0 and card.count('class="split split-held_out"') > 0
    collapsed = card.split('<details class="random">')[1].split("</details>")[0]
    assert collapsed.count('<li class="example">') == 2 * EXAMPLE_CAPS["random"]
    assert "not firing" in collapsed and 'class="tok"' not in collapsed


def test_top_example_tokens_are_shaded_and_whitespace_is_visible(evidence: EvidenceSet) -> None:
    card = _cards(_page(evidence))["feature-toy-weather"]
    first = card.split('<li class="example">')[1]
    assert 'class="tok" style="background:rgba(232,89,12,0.85)"' in first
    assert "↵" in first and "→" in first and "&lt;U+202E&gt;" in first
    assert "\n" not in first and "\t" not in first and "\u202e" not in first


def test_dead_feature_says_it_never_fires(evidence: EvidenceSet) -> None:
    card = _cards(_page(evidence))["feature-toy-dead"]
    assert "never fires" in card and "No firing contexts." in card and "Not explained yet." in card


def test_token_shading_is_proportional_to_activation_over_the_feature_max() -> None:
    spans = token_spans(["a", " b", " c", " d", " e"], np.array([0.0, 1.0, 4.0, -2.0, 8.0]), 4.0)
    assert spans.startswith("a<span")
    assert '<span class="tok" style="background:rgba(232,89,12,0.21)" title="1"> b</span>' in spans
    assert 'style="background:rgba(232,89,12,0.85)" title="4"> c</span>' in spans
    assert 'style="background:rgba(24,100,171,0.42)" title="-2"> d</span>' in spans
    assert 'rgba(232,89,12,0.85)" title="8"' in spans
    assert token_spans([" ", "", "x y"], None, 1.0) == '<span class="ws">·</span><span class="ws">∅</span>x y'


def test_counts_histogram_draws_one_bar_per_non_empty_bin() -> None:
    svg = counts_histogram_svg(np.array([0.0, 1.0, 2.0, 3.0]), np.array([4, 0, 2], dtype=np.int64), title="<t>")
    assert svg is not None and svg.count("<rect") == 2 and "&lt;t&gt;" in svg and "[0, 1): 4" in svg
    assert counts_histogram_svg([0.0, 1.0], [0]) is None


# --- the inspect report's Explanation panel -------------------------------------------------


def _report(explanation: object) -> dict:
    """A report feature as inspect writes it: a scored explanation under ``explained``, imported text under
    ``explanation``."""
    key = "explained" if isinstance(explanation, dict) else "explanation"
    return {"criterion": "weather", "features": [{"feature_id": "L1:F1", "rank": 1, key: explanation}]}


def test_inspect_card_draws_an_explanation_panel_from_the_report_dict() -> None:
    block = report_explanation(_explained()["toy:weather"])
    for explanation in (block, json.loads(json.dumps(clean_json(block)))):
        card = render_html(_report(explanation)).split('<article class="feature"')[1].split("</article>")[0]
        panel = card.split('class="panel explanation-panel"')[1].split("</section>")[0]
        assert "weather words such as rain and fog &lt;script&gt;" in panel and "<script>" not in card
        assert "agent · mcp agent — synthetic &quot;test&quot; author" in panel
        for text in ("embedding", "detection", "[0.86, 0.95]", "null: shuffled labels", "tag-interventional",
                     "smollm2-135m (weak local judge)"):
            assert text in panel, text
        assert panel.count('class="yes"') == 3


def test_inspect_card_keeps_a_plain_text_explanation_as_a_paragraph() -> None:
    card = render_html(_report("Fires on <rain>.")).split('<article class="feature"')[1]
    assert '<p class="explanation">Fires on &lt;rain&gt;.</p>' in card and "explanation-panel" not in card
    unscored = render_html(_report({"text": "rain", "author": {"kind": "human", "name": "me"}, "scores": []}))
    assert "Not scored." in unscored and "human · me" in unscored


# --- a real browser -------------------------------------------------------------------------


def _chromium() -> str:
    """The Chromium binary; fails (or skips when $INTERP_AGENT_NO_BROWSER=1) when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get(BROWSER_ENV) == "1":
        pytest.skip(f"no Chromium and {BROWSER_ENV}=1")
    pytest.fail("Chromium is not installed: the explain page is checked in a headless browser. "
                f"Run `apt-get install chromium` (Debian/Ubuntu), or set {BROWSER_ENV}=1 to skip this test.")


def _headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium with its own profile folder, a 60 s timeout and no network use."""
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, timeout=60, check=False)


def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the filtered scanlines of an 8-bit RGB(A) PNG (asserts it is one)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert data[12:16] == b"IHDR" and depth == 8 and colour in (2, 6), (depth, colour)
    idat, at = b"", 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        idat += data[at + 8:at + 8 + length] if kind == b"IDAT" else b""
        at += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * (4 if colour == 6 else 3)
    assert len(raw) == height * stride
    return width, height, [raw[i * stride + 1:(i + 1) * stride] for i in range(height)]


def test_page_renders_in_a_headless_browser(evidence: EvidenceSet, tmp_path: Path) -> None:
    binary = _chromium()
    page = tmp_path / "explain.html"
    page.write_text(_page(evidence), encoding="utf-8")
    shot = tmp_path / "explain.png"
    run = _headless(binary, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={SIZE[0]},{SIZE[1]}",
                    page.as_uri())
    assert shot.exists(), run.stderr.decode(errors="replace")[-2000:]
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == SIZE
    # a uniform scanline filters to a handful of byte values whatever the PNG filter; text and shading do not
    varied = sum(len(set(row)) > 8 for row in rows)
    assert varied > height // 5, f"only {varied} of {height} rows have content: a blank page?"
    dom = _headless(binary, tmp_path / "profile", "--dump-dom", page.as_uri()).stdout.decode()
    assert dom.count('class="feature feature-card"') == 5
    assert len(re.findall(r'<span class="tok" style="background:rgba\(', dom)) > 20
    assert "<script" not in dom
