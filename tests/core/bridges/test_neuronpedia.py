"""Neuronpedia bridge: refs, both payload shapes, the HTTP client's failure modes, the cache, and inspect."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import numpy as np
import pytest
from neuronpedia_standin import BATCH, SINGLE, Reply, live_payload

from interp_agent.core.bridges.cards import card_of
from interp_agent.core.bridges.dashboards import decode_token_text, decode_tokens, read_export
from interp_agent.core.bridges.neuronpedia import NeuronpediaClient, load_cards, parse_ref
from interp_agent.core.errors import InputFileError, RemoteServiceError, ValidationError
from interp_agent.core.formats.features import read_features
from interp_agent.core.inspection import inspect

SECRET = "np-test-key-0123456789"
PATH3 = "/api/feature/gpt2-small/0-res-jb/3"
PATH2 = "/api/feature/gpt2-small/0-res-jb/2"
LABEL3 = "the word contingent and conditional phrasing"  # written for these tests
LABEL2 = "medical imaging words such as MRI and ultrasound"  # written for these tests


def client(np_hub, tmp_path: Path, waits: list[float] | None = None, **kwargs) -> NeuronpediaClient:
    kwargs = {"cache_dir": tmp_path / "cache", "backoff": 0.01, "timeout": 2.0} | kwargs
    return NeuronpediaClient(np_hub.url, sleep=(waits.append if waits is not None else (lambda s: None)), **kwargs)


# -- refs ----------------------------------------------------------------------------------------
def test_a_ref_can_be_written_three_ways() -> None:
    want = ("gpt2-small", "6-res_scefr-ajt", 650)
    for ref in ("gpt2-small@6-res_scefr-ajt:650", "https://www.neuronpedia.org/gpt2-small/6-res_scefr-ajt/650",
                "https://www.neuronpedia.org/api/feature/gpt2-small/6-res_scefr-ajt/650",
                "https://neuronpedia.org/gpt2-small/6-res_scefr-ajt/650/?tab=1"):
        got = parse_ref(ref)
        assert (got.model_id, got.sae_id, got.index) == want
        assert got.layer == 6 and str(got) == "gpt2-small@6-res_scefr-ajt:650"


@pytest.mark.parametrize("bad", ["gpt2-small:650", "gpt2-small@6-res:x", "https://www.neuronpedia.org/gpt2-small",
                                 "../etc@passwd:1", "gpt2-small@../x:1", ""])
def test_anything_else_is_rejected_naming_the_accepted_forms(bad: str) -> None:
    with pytest.raises(ValidationError, match="model@sae:index"):
        parse_ref(bad)


def test_byte_level_token_spellings_are_decoded_and_plain_text_is_left_alone() -> None:
    assert decode_token_text("âĢľwarâĢĿ") == "\u201cwar\u201d"
    assert decode_token_text("ĠhelloĊ") == " hello\n"
    assert decode_token_text("café ā") == "café ā"  # no clean UTF-8 behind it: unchanged
    assert decode_tokens(["Ġsaid", "ĠâĢ", "ľ", "hi"]) == (" said", " ", "\u201c", "hi")  # split character
    assert decode_tokens([" plain", " text"]) == (" plain", " text")


# -- export files --------------------------------------------------------------------------------
def test_a_dashboard_feature_file_becomes_a_card_with_logits_density_and_examples() -> None:
    [card] = read_export(SINGLE)
    assert card.feature_id == "SAE:F15" and card.index == 15 and card.layer is None  # the file names no SAE
    assert card.density == pytest.approx(0.00409)
    assert card.positive_logits[0] == (" plaint", 1.655) and card.negative_logits[0] == ("ngth", -1.461)
    assert card.label is None and card.source["kind"] == "neuronpedia" and card.source["file"] == str(SINGLE)
    values = [e.max_value for e in card.examples]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(0.826)
    assert len({e.text for e in card.examples}) == len(card.examples)  # the file repeats an example; kept once
    top = card.examples[0]
    assert top.tokens[top.max_token_index] == " some" and "".join(top.tokens) == top.text
    assert "âĢ" not in " ".join(e.text for e in card.examples)


def test_a_dashboard_batch_gives_one_card_per_feature_with_the_batch_layer_and_model() -> None:
    cards = read_export(BATCH)
    assert [c.feature_id for c in cards] == ["SAE:L0:F2", "SAE:L0:F3"]
    assert {c.model for c in cards} == {"gpt2-small"} and {c.sae_id for c in cards} == {"0-res-jb"}
    assert cards[1].positive_logits[0] == (" contingent", 4.019)
    assert cards[1].max_activation == pytest.approx(3.429) and cards[1].source["format"] == "saedashboard-batch"
    assert "\u201cwar, strikes" in cards[1].examples[0].text


def test_a_bad_export_file_is_named_with_its_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"feature_index": 3, "frac_nonzero": 2.5}))
    with pytest.raises(InputFileError, match=r"bad\.json.*frac_nonzero"):
        read_export(bad)
    bad.write_text(json.dumps({"features": [{"feature_index": 1, "pos_str": ["a"], "pos_values": []}]}))
    with pytest.raises(InputFileError, match=r"features\[0\]\.pos_values"):
        read_export(bad)
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match="not JSON"):
        read_export(bad)


# -- the client ----------------------------------------------------------------------------------
def test_a_live_answer_becomes_a_labelled_card_and_the_key_travels_only_as_a_header(
    np_hub, batch, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    np_hub.serve(PATH3, Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    with client(np_hub, tmp_path, api_key=SECRET) as c:
        card = c.card("gpt2-small@0-res-jb:3")
        assert SECRET not in repr(c)
    assert np_hub.requests[0][1]["x-api-key"] == SECRET
    assert SECRET not in np_hub.requests[0][0]
    assert card.feature_id == "SAE:L0:F3" and card.label == LABEL3 and card.hookpoint == "blocks.0.hook_resid_pre"
    assert card.source["kind"] == "neuronpedia" and card.source["url"] == f"{np_hub.url}/gpt2-small/0-res-jb/3"
    assert card.source["api_url"] == np_hub.url + PATH3 and card.source["retrieved_at"]
    assert card.density == pytest.approx(0.00023) and card.examples[0].max_value == pytest.approx(3.429)
    assert SECRET not in caplog.text and "GET" in caplog.text


def test_no_key_header_is_sent_without_a_key(np_hub, batch, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("NEURONPEDIA_API_KEY", raising=False)
    np_hub.serve(PATH3, Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    client(np_hub, tmp_path).card("gpt2-small@0-res-jb:3")
    assert "x-api-key" not in np_hub.requests[0][1]


def test_a_429_is_retried_after_the_wait_its_retry_after_asks_for(np_hub, batch, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(429, {"error": "slow down"}, {"Retry-After": "2"}),
              Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    waits: list[float] = []
    card = client(np_hub, tmp_path, waits).card("gpt2-small@0-res-jb:3")
    assert card.label == LABEL3 and waits == [2.0] and np_hub.hits(PATH3) == 2


def test_a_retry_after_date_in_the_past_means_no_wait_and_long_waits_are_capped(np_hub, batch, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(429, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
                 Reply(503, b"", {"Retry-After": "3600"}),
                 Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    waits: list[float] = []
    client(np_hub, tmp_path, waits, max_wait=5.0).card("gpt2-small@0-res-jb:3")
    assert waits == [0.0, 5.0]


def test_5xx_answers_are_retried_with_exponential_backoff(np_hub, batch, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(500, b"oops"), Reply(503, b"busy"),
              Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    waits: list[float] = []
    client(np_hub, tmp_path, waits).card("gpt2-small@0-res-jb:3")
    assert waits == [0.01, 0.02] and np_hub.hits(PATH3) == 3


def test_a_server_that_keeps_failing_ends_with_the_number_of_tries_and_last_status(
    np_hub, tmp_path: Path, caplog
) -> None:
    np_hub.serve(PATH3, Reply(500, b"oops"))
    with pytest.raises(RemoteServiceError, match=r"in 3 tries; the last was HTTP 500") as err:
        client(np_hub, tmp_path, max_retries=2, api_key=SECRET).card("gpt2-small@0-res-jb:3")
    assert np_hub.hits(PATH3) == 3 and err.value.code == "remote_service_error"
    assert SECRET not in str(err.value) and SECRET not in caplog.text


def test_a_slow_server_times_out_with_a_clear_error(np_hub, batch, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3), delay=0.6))
    with pytest.raises(RemoteServiceError, match=r"in 2 tries; the last was timed out after 0\.1 s"):
        client(np_hub, tmp_path, timeout=0.1, max_retries=1).card("gpt2-small@0-res-jb:3")


def test_an_answer_that_is_not_json_names_the_url_and_is_not_cached(np_hub, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}))
    c = client(np_hub, tmp_path)
    with pytest.raises(RemoteServiceError, match=rf"answer from {np_hub.url}{PATH3} .*was not JSON"):
        c.card("gpt2-small@0-res-jb:3")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.json"))


def test_json_without_a_feature_is_refused_and_not_cached(np_hub, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(200, {"message": "no such feature"}))
    with pytest.raises(RemoteServiceError, match="not a usable feature"):
        client(np_hub, tmp_path).card("gpt2-small@0-res-jb:3")
    assert not list((tmp_path / "cache").rglob("*.json")) if (tmp_path / "cache").exists() else True


def test_a_missing_feature_names_the_ref(np_hub, tmp_path: Path) -> None:
    with pytest.raises(RemoteServiceError, match=r"no feature gpt2-small@0-res-jb:99 .*HTTP 404"):
        client(np_hub, tmp_path, api_key=SECRET).card("https://www.neuronpedia.org/gpt2-small/0-res-jb/99")
    assert np_hub.hits("/api/feature/gpt2-small/0-res-jb/99") == 1  # a 404 is not retried


def test_an_unreachable_hub_says_so_and_suggests_an_export_file(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = NeuronpediaClient(f"http://127.0.0.1:{port}", cache_dir=tmp_path, sleep=lambda s: None)
    with pytest.raises(RemoteServiceError, match="unreachable") as err:
        c.card("gpt2-small@0-res-jb:3")
    assert "SAEDashboard export file" in str(err.value)


def test_a_second_fetch_is_served_from_the_cache(np_hub, batch, tmp_path: Path) -> None:
    np_hub.serve(PATH3, Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    first = client(np_hub, tmp_path).card("gpt2-small@0-res-jb:3")
    second = client(np_hub, tmp_path).card("gpt2-small@0-res-jb:3")  # a new client: the cache is on disk
    assert np_hub.hits(PATH3) == 1
    assert second.label == first.label and second.source["from_cache"] is True
    assert second.source["retrieved_at"] == first.source["retrieved_at"]
    client(np_hub, tmp_path).card("gpt2-small@0-res-jb:3", refresh=True)
    assert np_hub.hits(PATH3) == 2
    client(np_hub, tmp_path, cache_dir=False).card("gpt2-small@0-res-jb:3")
    assert np_hub.hits(PATH3) == 3


def test_cards_load_from_refs_and_files_together_and_round_trip_as_feature_jsonl(np_hub, batch, tmp_path: Path) -> None:
    from interp_agent.core.bridges.cards import write_cards

    np_hub.serve(PATH3, Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    cards = load_cards(["gpt2-small@0-res-jb:3", str(BATCH), str(SINGLE)], client=client(np_hub, tmp_path))
    assert [c.feature_id for c in cards] == ["SAE:L0:F3", "SAE:L0:F2", "SAE:F15"]  # F3 from the API, kept once
    rows = read_features(write_cards(tmp_path / "cards.jsonl", cards))
    back = card_of(rows[0])
    assert rows[0].label == LABEL3 and rows[0].source == "neuronpedia" and back == cards[0]
    with pytest.raises(ValidationError, match="neither|model@sae:index"):
        load_cards(["no-such-file.json"], client=client(np_hub, tmp_path))


# -- inspect -------------------------------------------------------------------------------------
@pytest.fixture
def served(np_hub, batch, tmp_path: Path, monkeypatch):
    """The np_hub serving features 2 and 3; inspect's default client pointed at it, with a key set."""
    np_hub.serve(PATH2, Reply(body=live_payload(batch["features"][0], "gpt2-small", "0-res-jb", LABEL2)))
    np_hub.serve(PATH3, Reply(body=live_payload(batch["features"][1], "gpt2-small", "0-res-jb", LABEL3)))
    monkeypatch.setenv("NEURONPEDIA_BASE_URL", np_hub.url)
    monkeypatch.setenv("INTERP_AGENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NEURONPEDIA_API_KEY", SECRET)
    return np_hub


def test_inspect_imports_cards_and_says_plainly_that_nothing_was_measured(
    served, word_encoder, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "run"
    result = inspect("gpt2-small", "a medical imaging scan such as an MRI", backend="neuronpedia",
                     neuronpedia=["gpt2-small@0-res-jb:3", f"{served.url}/gpt2-small/0-res-jb/2"], out=out)
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "neuronpedia" and report["synthetic"] is False
    assert report["warnings"][0].startswith("NO CRITERION MEASUREMENT")
    assert "No criterion association was measured" in report["method"]["neuronpedia"]
    assert [f["feature_id"] for f in report["features"]] == ["SAE:L0:F2", "SAE:L0:F3"]  # label closest first
    for f in report["features"]:
        assert f["association"] is None and f["provenance"]["association"] is None
        assert f["provenance"]["criterion_association"].startswith("not measured")
        assert f["card"]["provenance"] == "imported" and f["card"]["source"]["kind"] == "neuronpedia"
        assert f["card"]["source"]["retrieved_at"] and f["card"]["density"] > 0
        assert f["examples"] and f["examples"][0]["tokens"] and f["provenance"]["examples"] == "imported"
    top = report["features"][0]
    assert top["label"] == LABEL2 and top["card"]["logit_effects"]["positive"][0] == [" MRI", 3.121]
    ex = top["examples"][0]
    assert ex["token"] == ex["tokens"][ex["token_index"]][0] and ex["activation"] == pytest.approx(0.8)
    assert result.paths["neuronpedia_features"] == out / "neuronpedia-features.jsonl"
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert "NO CRITERION MEASUREMENT" in html and "density (fraction non-zero)" in html and 'class="tok"' in html
    assert LABEL2 in md and "Logit effects, promotes" in md
    assert [h["x-api-key"] for _, h in served.requests] == [SECRET, SECRET]
    assert SECRET not in caplog.text
    for path in out.iterdir():
        assert SECRET not in path.read_text()


def test_inspect_with_records_measures_the_association_and_keeps_the_cards(served, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        score = i % 2
        rows.append({"model": "gpt2-small", "prompt_id": f"p{i}", "text": f"prompt {i}", "criterion_score": score,
                     "features": {"SAE:L0:F3": float(score * 2.0 + rng.uniform(0, 0.3)),
                                  "SAE:L0:F2": float(rng.uniform(0, 1.0))}})
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    inspect("gpt2-small", "a contingency", backend="neuronpedia", records=records,
            neuronpedia=["gpt2-small@0-res-jb:3", "gpt2-small@0-res-jb:2"], out=out)
    report = json.loads((out / "report.json").read_text())
    top = report["features"][0]
    assert top["feature_id"] == "SAE:L0:F3" and top["association"]["provenance"] == "correlational"
    assert top["label"] == LABEL3 and top["card"]["density"] == pytest.approx(0.00023)
    assert top["provenance"]["examples"] == "correlational" and "criterion_association" not in top["provenance"]
    assert not any(w.startswith("NO CRITERION MEASUREMENT") for w in report["warnings"])
    assert "measured on the given activation records" in report["method"]["neuronpedia"]


def test_the_cli_reads_export_files_offline(word_encoder, tmp_path: Path, capsys) -> None:
    from interp_agent.cli import main

    code = main(["inspect", "--model", "gpt2-small", "--criterion", "contingent conditions", "--backend",
                 "neuronpedia", "--neuronpedia", str(BATCH), "--out", str(tmp_path / "o"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["top"][0]["feature_id"] == "SAE:L0:F3" and out["warnings"][0].startswith("NO CRITERION")
    assert main(["inspect", "--model", "m", "--criterion", "c", "--backend", "neuronpedia", "--out",
                 str(tmp_path / "p")]) == 2
    assert "no Neuronpedia features given" in capsys.readouterr().err
