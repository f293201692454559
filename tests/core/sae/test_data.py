"""Activation caches: every stored format gives the same rows, splits are by prompt or row
hash, reservoir sampling is uniform and deterministic, batches are a function of the seed."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.sae import data


def _rows(n: int = 3_000, d: int = 8) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)


def _all(cache: data.ActivationCache, split: str) -> np.ndarray:
    return np.concatenate([data._read_shard(p) for p in cache.shards(split)])


def test_safetensors_npy_and_parquet_give_the_same_cache(tmp_path) -> None:  # noqa: ANN001
    from safetensors.numpy import save_file

    x = _rows()
    np.save(tmp_path / "a.npy", x)
    save_file({"activations": x}, str(tmp_path / "a.safetensors"))
    pq.write_table(pa.table({"activations": pa.array(list(x), type=pa.list_(pa.float32()))}), tmp_path / "a.parquet",
                   row_group_size=700)
    pq.write_table(pa.table({f"d{i}": x[:, i] for i in range(x.shape[1])}), tmp_path / "wide.parquet")
    caches = [data.from_activations([tmp_path / f], tmp_path / f"cache-{f}", shard_rows=1_000, chunk_rows=512)
              for f in ("a.npy", "a.safetensors", "a.parquet", "wide.parquet")]
    ref = caches[0]
    assert ref.n_train + ref.n_held_out == len(x) and 0.05 < ref.n_held_out / len(x) < 0.15
    assert len(ref.shards("train")) == -(-ref.n_train // 1_000)
    for c in caches[1:]:
        np.testing.assert_array_equal(_all(c, "train"), _all(ref, "train"))
        np.testing.assert_array_equal(_all(c, "held_out"), _all(ref, "held_out"))
    # every row lands in exactly one split
    both = np.concatenate([_all(ref, "train"), _all(ref, "held_out")])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, x.tolist()))


def test_a_finished_cache_is_reused_and_a_changed_source_rebuilds_it(tmp_path) -> None:  # noqa: ANN001
    np.save(tmp_path / "a.npy", _rows())
    first = data.from_activations([tmp_path / "a.npy"], tmp_path / "c")
    stamp = (tmp_path / "c" / data.CACHE_META).stat().st_mtime_ns
    again = data.from_activations([tmp_path / "a.npy"], tmp_path / "c")
    assert again == first and (tmp_path / "c" / data.CACHE_META).stat().st_mtime_ns == stamp
    other = data.from_activations([tmp_path / "a.npy"], tmp_path / "c", max_records=500)
    assert other.n_train + other.n_held_out == 500


def test_train_batches_depend_on_the_seed_and_step_only(tmp_path) -> None:  # noqa: ANN001
    np.save(tmp_path / "a.npy", _rows(5_000))
    cache = data.from_activations([tmp_path / "a.npy"], tmp_path / "c", shard_rows=900)
    a = [b.copy() for _, b in zip(range(30), cache.train_batches(256, seed=1), strict=False)]
    b = [b.copy() for _, b in zip(range(30), cache.train_batches(256, seed=1), strict=False)]
    late = [b.copy() for _, b in zip(range(10), cache.train_batches(256, seed=1, start_step=20), strict=False)]
    other = next(cache.train_batches(256, seed=2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(a[20:], late, strict=True))
    assert not np.array_equal(a[0], other)
    # one epoch visits every training row once
    per_epoch = cache.n_train // 256
    seen = np.concatenate(a[:per_epoch])
    assert len({r.tobytes() for r in seen}) == len(seen)
    with pytest.raises(ValidationError):
        next(cache.train_batches(cache.n_train + 1, seed=0))


def test_reservoir_is_deterministic_and_uniform() -> None:
    stream = np.arange(1_000, dtype=np.float32)[:, None]
    hits = np.zeros(1_000)
    for seed in range(300):
        r = data.Reservoir(100, 1, seed=seed)
        for i in range(0, 1_000, 64):  # chunked like a real stream
            r.add(stream[i:i + 64])
        got = r.result()[:, 0].astype(int)
        assert len(set(got)) == 100
        hits[got] += 1
        if seed == 0:
            again = data.Reservoir(100, 1, seed=0)
            again.add(stream)
            np.testing.assert_array_equal(np.sort(again.result()[:, 0]), np.sort(got))
    rate = hits / 300  # each row is kept with probability 0.1
    assert abs(rate[:500].mean() - 0.1) < 0.01 and abs(rate[500:].mean() - 0.1) < 0.01


def test_records_become_dimensions_split_by_prompt(tmp_path) -> None:  # noqa: ANN001
    lines = []
    for p in range(200):
        for t in range(3):
            lines.append({"prompt_id": f"p{p}", "criterion_score": p % 2, "token_index": t,
                          "features": {"L2:D10": float(p), "L2:D2": float(t + 1)}})
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    cache = data.from_records(path, tmp_path / "c", hookpoint="blocks.2.hook_resid_post")
    assert cache.feature_ids == ["L2:D2", "L2:D10"] and cache.d_in == 2
    held = _all(cache, "held_out")
    train = _all(cache, "train")
    # a prompt's three token rows stay on one side of the split
    assert not set(held[:, 1].tolist()) & set(train[:, 1].tolist())
    assert len(held) % 3 == 0 and 0.04 < len(held) / 600 < 0.2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.txt", b"hello", "unknown activation file type"),
        ("vec.npy", None, "expected an array"),
        ("nan.npy", "nan", "NaN"),
    ],
)
def test_bad_activation_files_are_named(tmp_path, name, content, message) -> None:  # noqa: ANN001
    path = tmp_path / name
    if name == "vec.npy":
        np.save(path, np.zeros(5, np.float32))
    elif content == "nan":
        x = _rows(100)
        x[37, 2] = np.nan
        np.save(path, x)
    else:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=message) as info:
        data.from_activations([path], tmp_path / "c")
    assert name in str(info.value)
    if content == "nan":
        assert "row 37 " in str(info.value)  # counted within the file named
        with pytest.raises(InputFileError, match="row 37 "):  # also when it is the second file
            np.save(tmp_path / "ok.npy", _rows(50))
            data.from_activations([tmp_path / "ok.npy", path], tmp_path / "c2")
