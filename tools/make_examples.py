"""Regenerate examples/synthetic/: small planted records, interventions and a feature dump.

Everything written is synthetic (generated, not measured) and says so in every row.

    python tools/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

from interp_agent.core.formats import FeatureRecord, write_features, write_interventions, write_records
from interp_agent.core.synthetic import PlantedConfig, planted_interventions, planted_records

CRITERION = "the next token should be a physical measurement unit"
OUT = Path(__file__).resolve().parents[1] / "examples" / "synthetic"


def main() -> None:
    config = PlantedConfig(n_prompts=200, n_always_on=20, n_rare=20, n_confounded=10, n_noise=50)
    planted = planted_records("toy/model-a", CRITERION, config)
    write_records(OUT / "records.jsonl", planted.records, planted.feature_metadata)
    write_interventions(OUT / "interventions.jsonl", planted_interventions(planted, CRITERION))
    dump = []
    for family in ("true", "confounded", "noise"):
        for fid in planted.families[family][:5]:
            meta = planted.feature_metadata[fid]
            dump.append(FeatureRecord(feature_id=fid, model="toy/model-a", layer=meta.layer, label=meta.label,
                                      decoder_signature=meta.decoder_signature, source="synthetic",
                                      extra={"synthetic": True}))
    write_features(OUT / "features.jsonl", dump)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
