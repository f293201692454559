"""Goodfire bridge: SDK-shaped feature objects and exports become cards; live search says it is gone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from interp_agent.core.bridges.cards import card_of
from interp_agent.core.bridges.goodfire import (
    SHUTDOWN_NOTE,
    cards_from_goodfire,
    read_goodfire_export,
    search_goodfire,
    write_goodfire_features,
)
from interp_agent.core.errors import InputFileError, RemoteServiceError, ValidationError
from interp_agent.core.formats.features import read_features
from interp_agent.core.inspection import inspect


class _Conditional:
    def __bool__(self) -> bool:
        raise TypeError("a Goodfire comparison builds a condition; it has no truth value")


class Feature:
    """Shaped like ``goodfire.Feature``: these four attributes, and comparisons that build conditions."""

    def __init__(self, uuid: uuid.UUID, label: str, max_activation_strength: float, index_in_sae: int) -> None:
        self.uuid, self.label = uuid, label
        self.max_activation_strength, self.index_in_sae = max_activation_strength, index_in_sae

    def __eq__(self, other: object) -> _Conditional:  # type: ignore[override]
        return _Conditional()

    __hash__ = object.__hash__

    def json(self) -> dict:
        return {"uuid": self.uuid.hex, "label": self.label, "index_in_sae": self.index_in_sae,
                "max_activation_strength": self.max_activation_strength}


class FeatureGroup:
    """Shaped like ``goodfire.FeatureGroup``: iterable, with ``json()`` -> ``{"features": [...]}``."""

    def __init__(self, features: list[Feature]) -> None:
        self._features = dict(enumerate(features))

    def __iter__(self):
        yield from self._features.values()

    def json(self) -> dict:
        return {"features": [f.json() for f in self]}


def features() -> list[Feature]:
    return [
        Feature(uuid.UUID(int=1), "Descriptions of anger and indignation", 6.5, 40312),
        Feature(uuid.UUID(int=2), "Polite refusals to help with a request", 3.25, 1207),
    ]


def test_sdk_objects_become_labelled_cards_that_carry_the_shutdown_note() -> None:
    cards = cards_from_goodfire(FeatureGroup(features()), model="my/llama", layer=19)
    assert [c.feature_id for c in cards] == ["SAE:L19:F40312", "SAE:L19:F1207"]
    first = cards[0]
    assert first.label == "Descriptions of anger and indignation" and first.max_activation == 6.5
    assert first.source["kind"] == "goodfire" and first.source["live_search"] is False
    assert SHUTDOWN_NOTE in first.notes and first.extra["uuid"] == uuid.UUID(int=1).hex
    assert first.examples == () and first.density is None  # Goodfire features carry neither: nothing is invented


def test_dicts_and_a_single_object_are_read_too_and_duplicates_kept_once() -> None:
    f = features()[0]
    cards = cards_from_goodfire([f.json(), f, {"label": "x", "index_in_sae": 7}])
    assert [c.feature_id for c in cards] == ["SAE:F40312", "SAE:F7"]  # no layer given or known
    assert cards_from_goodfire(f)[0].label == f.label


def test_the_released_sae_layer_is_used_for_a_known_model_and_said_so() -> None:
    [card] = cards_from_goodfire(features()[:1], model="meta-llama/Llama-3.3-70B-Instruct")
    assert card.layer == 50 and card.feature_id == "SAE:L50:F40312"
    assert any("layer 50" in n for n in card.notes)


def test_a_feature_without_an_index_is_rejected_by_position() -> None:
    with pytest.raises(ValidationError, match=r"feature 1 .*index_in_sae"):
        cards_from_goodfire([features()[0], {"label": "no index", "index_in_sae": None, "uuid": "u"}])
    with pytest.raises(ValidationError, match="string"):
        cards_from_goodfire("Feature(anger)")


def test_an_export_file_converts_to_feature_jsonl(tmp_path: Path) -> None:
    src = tmp_path / "group.json"
    src.write_text(json.dumps(FeatureGroup(features()).json()))
    out = write_goodfire_features(src, tmp_path / "features.jsonl", layer=19)
    rows = read_features(out)
    assert [r.feature_id for r in rows] == ["SAE:L19:F40312", "SAE:L19:F1207"]
    assert rows[0].source == "goodfire" and rows[0].label.startswith("Descriptions of anger")
    card = card_of(rows[0])
    assert card is not None and card.source["file"] == str(src) and SHUTDOWN_NOTE in card.notes
    (tmp_path / "bad.json").write_text(json.dumps({"features": [{"label": "no index"}]}))
    with pytest.raises(InputFileError, match=r"bad\.json.*index_in_sae"):
        read_goodfire_export(tmp_path / "bad.json")


def test_live_search_is_unavailable_and_returns_nothing() -> None:
    with pytest.raises(RemoteServiceError, match="shut down in 2025") as err:
        search_goodfire("anger", top_k=5)
    assert "live feature search is unavailable" in str(err.value)


def test_the_cli_converts_an_export_and_inspect_shows_the_note(word_encoder, tmp_path: Path, capsys) -> None:
    from interp_agent.cli import main

    src = tmp_path / "group.json"
    src.write_text(json.dumps(FeatureGroup(features()).json()))
    assert main(["convert-goodfire", str(src), "--out", str(tmp_path / "f.jsonl"), "--layer", "19"]) == 0
    assert "live search is unavailable" in capsys.readouterr().out
    result = inspect("my/llama", "descriptions of anger", backend="features", features=tmp_path / "f.jsonl",
                     out=tmp_path / "run")
    top = result.report["features"][0]
    assert top["feature_id"] == "SAE:L19:F40312" and top["card"]["source"]["kind"] == "goodfire"
    assert top["provenance"]["criterion_association"].startswith("not measured")
    assert SHUTDOWN_NOTE in (tmp_path / "run" / "report.html").read_text().replace("&#x27;", "'")
