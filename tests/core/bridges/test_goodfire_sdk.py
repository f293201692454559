"""The Goodfire bridge on real ``goodfire`` SDK objects (Feature, FeatureGroup) built offline; no API is called."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

goodfire = pytest.importorskip(
    "goodfire", reason="the goodfire extra (pip install 'interp-agent[goodfire]') is not installed")

from interp_agent.cli import main  # noqa: E402
from interp_agent.core.bridges.goodfire import (  # noqa: E402
    PLACEHOLDER_NOTE,
    cards_from_goodfire,
    read_goodfire_export,
    search_goodfire,
)
from interp_agent.core.errors import RemoteServiceError  # noqa: E402
from interp_agent.core.formats.features import read_features  # noqa: E402

MODEL = "meta-llama/Llama-3.3-70B-Instruct"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket the code opens fails the test: the bridge must never reach Goodfire's hosted API."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _group() -> Any:
    return goodfire.FeatureGroup([
        goodfire.Feature(uuid=uuid.UUID(int=1), label="units of physical measurement", index_in_sae=1204),
        goodfire.Feature(uuid=uuid.UUID(int=2), label="metric prefixes such as kilo and milli", index_in_sae=88),
    ])


def test_real_sdk_feature_and_group_objects_become_cards(no_network: None) -> None:
    group = _group()
    cards = cards_from_goodfire(group, model=MODEL, layer=50)
    assert [c.feature_id for c in cards] == ["SAE:L50:F1204", "SAE:L50:F88"]
    assert cards[0].explanations == ("units of physical measurement",)
    assert cards[0].extra["uuid"] == uuid.UUID(int=1).hex
    # the SDK object has no max_activation_strength: none is invented
    assert cards[0].max_activation is None
    single = cards_from_goodfire(goodfire.Feature(uuid=uuid.UUID(int=3), label="x", index_in_sae=7), layer=50)
    assert [c.feature_id for c in single] == ["SAE:L50:F7"]


def test_convert_goodfire_reads_the_sdks_own_json_export(tmp_path: Path, no_network: None) -> None:
    src = tmp_path / "group.json"
    src.write_text(json.dumps(_group().json()))  # what FeatureGroup.json() writes
    out = tmp_path / "features.jsonl"
    assert main(["convert-goodfire", str(src), "--out", str(out), "--model", MODEL, "--layer", "50"]) == 0
    feats = read_features(out)
    assert [f.feature_id for f in feats] == ["SAE:L50:F1204", "SAE:L50:F88"]
    assert feats[1].label == "metric prefixes such as kilo and milli"
    # Feature.json() writes max_activation_strength 1 for every feature: a constant, never kept as a measurement
    assert all(f["max_activation_strength"] == 1 for f in _group().json()["features"])
    cards = read_goodfire_export(src, model=MODEL, layer=50)
    assert all(c.max_activation is None and PLACEHOLDER_NOTE in c.notes for c in cards)


def test_live_search_is_refused_saying_why(no_network: None) -> None:
    with pytest.raises(RemoteServiceError, match="shut down"):
        search_goodfire("measurement units")
