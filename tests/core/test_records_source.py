"""Records sources: a JSONL file kept in memory between passes ranks exactly as one spilled to Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp_agent.core.formats import write_records
from interp_agent.core.ranking import RankingConfig, RecordsSource, rank_records
from interp_agent.core.synthetic import PlantedConfig, planted_records


@pytest.fixture(scope="module")
def records_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    planted = planted_records("toy/model-a", "synthetic criterion", PlantedConfig(n_prompts=300))
    return write_records(
        tmp_path_factory.mktemp("records") / "records.jsonl", planted.records, planted.feature_metadata
    )


def test_a_small_jsonl_file_is_kept_in_memory_and_a_big_one_spilled(records_path: Path) -> None:
    kept, spilled = RecordsSource(records_path), RecordsSource(records_path, chunk_rows=64, keep_rows=100)
    for source in (kept, spilled):
        rows = sum(len(c.prompt_ids) for c in source.chunks())
        assert rows == 300
    assert kept._kept is not None and kept._spill is None
    assert spilled._kept is None and spilled._spill is not None and Path(spilled._spill.name).is_dir()
    folder = Path(spilled._spill.name)
    spilled.close()
    assert not folder.exists()


def test_kept_and_spilled_jsonl_give_the_same_report(records_path: Path) -> None:
    config = RankingConfig(top_k=15)
    kept = rank_records(RecordsSource(records_path), config)
    spilled = rank_records(RecordsSource(records_path, keep_rows=0), config)
    assert json.dumps(kept, sort_keys=True, default=str) == json.dumps(spilled, sort_keys=True, default=str)


def test_later_passes_restrict_activations_and_drop_texts_unless_asked(records_path: Path) -> None:
    source = RecordsSource(records_path)
    first = list(source.chunks())
    assert all(c.texts is None for c in first)
    (again,) = source.chunks(with_text=True, features=np.array([0, 2]))
    assert set(again.act_feature.tolist()) <= {0, 2} and again.texts is not None and len(again.texts) == 300
    assert sum(int((c.act_feature == 2).sum()) for c in first) == int((again.act_feature == 2).sum())
