"""Benchmark: rank ~2,000 features over 200,000 records (~10M non-zero activations).

Measures, each in its own process (so peak RSS is its own):
- baseline: a straightforward pure-Python streaming ranker of the same report (hash
  split, Pearson and specificity per split, exact AUROC from stored values, top
  examples), without the bootstrap and probes ours adds;
- lean baseline: pure-Python Pearson r only (dict of sums, no split): a lower bound that
  computes far less than the report needs, printed for scale;
- ours from JSONL, and ours from the Parquet dataset (the full two-pass ranking: held-out
  split, q-values, AUROC histograms, bootstrap stability, examples).

Prints rows/s, peak RSS and the speed-up against both baselines measured in the same
run (the ratio column is against the full baseline). Goal: Parquet path >= 20x the baseline, under 2 GB RSS.

    python tools/bench/records_rank.py [--rows 200000] [--features 2000] [--nnz 50]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson


def generate(path: Path, rows: int, features: int, nnz: int, seed: int = 0) -> None:
    """Write a records JSONL file: ``nnz`` active features per row, 10 of them tracking the score."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            y = (rng.random(n) < 0.5).astype(float)
            feats = np.argsort(rng.random((n, features)), axis=1)[:, :nnz]  # distinct per row
            acts = np.round(rng.exponential(1.0, (n, nnz)), 4)
            acts += np.where(feats < 10, 2.0 * y[:, None], 0.0)
            for i in range(n):
                fh.write(orjson.dumps({
                    "model": "bench/model", "prompt_id": f"p{start + i}", "text": f"prompt {start + i}",
                    "criterion_score": float(y[i]),
                    "features": {f"F{f}": a for f, a in zip(feats[i].tolist(), acts[i].tolist(), strict=True)},
                }))
                fh.write(b"\n")


def baseline_lean(path: str) -> dict:
    """Pure-Python streaming Pearson ranker: one pass, dicts of sums, no split (a lower bound)."""
    n = sy = syy = 0.0
    sx: dict[str, float] = {}
    sxx: dict[str, float] = {}
    sxy: dict[str, float] = {}
    with open(path) as fh:
        for line in fh:
            row = json.loads(line)
            y = float(row["criterion_score"])
            n += 1
            sy += y
            syy += y * y
            for fid, x in row["features"].items():
                sx[fid] = sx.get(fid, 0.0) + x
                sxx[fid] = sxx.get(fid, 0.0) + x * x
                sxy[fid] = sxy.get(fid, 0.0) + x * y
    scores = {fid: _pearson(n, sx[fid], sxx[fid], sy, syy, sxy[fid]) for fid in sx}
    return {"rows": int(n), "top": sorted(scores, key=lambda f: -abs(scores[f]))[:20]}


def _pearson(n: float, sx: float, sxx: float, sy: float, syy: float, sxy: float) -> float:
    cov = sxy - sx * sy / n
    vx = sxx - sx * sx / n
    vy = syy - sy * sy / n
    return cov / (vx * vy) ** 0.5 if vx > 1e-12 and vy > 1e-12 else 0.0


def baseline(path: str) -> dict:
    """The straightforward pure-Python streaming ranker of the same report, one pass.

    Per prompt: a hash split (hashlib); per feature and split: Pearson sums, specificity
    mass, exact AUROC from the stored non-zero values (rows without the feature form a
    tied block at 0), top-5 examples (heapq). It skips the bootstrap and probe
    activations that interp-agent also computes, so it does less work than ours.
    """
    import hashlib
    import heapq

    n = [0.0, 0.0]
    sy = [0.0, 0.0]
    syy = [0.0, 0.0]
    npos = [0, 0]
    stats: dict[str, list[list[float]]] = {}  # per feature and split: sx, sxx, sxy, sabs, sabsy
    values: dict[str, list[list[tuple[float, float]]]] = {}
    tops: dict[str, list[tuple[float, str]]] = {}
    with open(path) as fh:
        for line in fh:
            row = json.loads(line)
            y = float(row["criterion_score"])
            digest = hashlib.blake2b(row["prompt_id"].encode(), digest_size=8).digest()
            g = 1 if int.from_bytes(digest, "little") / 2**64 < 0.3 else 0
            n[g] += 1
            sy[g] += y
            syy[g] += y * y
            npos[g] += y > 0.5
            for fid, x in row["features"].items():
                st = stats.get(fid)
                if st is None:
                    st = stats[fid] = [[0.0] * 5, [0.0] * 5]
                    values[fid] = [[], []]
                    tops[fid] = []
                s = st[g]
                s[0] += x
                s[1] += x * x
                s[2] += x * y
                s[3] += abs(x)
                s[4] += abs(x) * y
                if x != 0:
                    values[fid][g].append((x, y))
                heap = tops[fid]
                if len(heap) < 5:
                    heapq.heappush(heap, (x, row["prompt_id"]))
                elif x > heap[0][0]:
                    heapq.heapreplace(heap, (x, row["prompt_id"]))
    report = {}
    for fid, st in stats.items():
        out = {}
        for g in (0, 1):
            s = st[g]
            vals = sorted(values[fid][g])
            pos_nz = sum(1 for _, y in vals if y > 0.5)
            zeros_pos = npos[g] - pos_nz
            zeros_neg = (n[g] - npos[g]) - (len(vals) - pos_nz)
            # rank-sum AUROC: count negatives below each positive, ties half
            wins = 0.0
            neg_below = 0.0
            i = 0
            zero_done = False
            while i < len(vals) or not zero_done:
                if not zero_done and (i == len(vals) or vals[i][0] > 0):
                    wins += zeros_pos * (neg_below + 0.5 * zeros_neg)
                    neg_below += zeros_neg
                    zero_done = True
                    continue
                j = i
                while j < len(vals) and vals[j][0] == vals[i][0]:
                    j += 1
                p = sum(1 for _, y in vals[i:j] if y > 0.5)
                q = (j - i) - p
                wins += p * (neg_below + 0.5 * q)
                neg_below += q
                i = j
            auroc = wins / (npos[g] * (n[g] - npos[g])) if npos[g] and n[g] - npos[g] else None
            out[g] = (_pearson(n[g], s[0], s[1], sy[g], syy[g], s[2]), auroc, s[4] / s[3] if s[3] else None)
        report[fid] = out
    top = sorted(report, key=lambda f: -abs(report[f][0][0]))[:20]
    return {"rows": int(sum(n)), "top": top}


def ours(path: str) -> dict:
    """The full ranking of interp-agent."""
    from interp_agent.core.ranking import RankingConfig, RecordsSource, rank_records

    body = rank_records(RecordsSource(path), RankingConfig(top_k=20))
    return {"rows": body["summary"]["n_rows"], "top": [f["feature_id"] for f in body["features"]]}


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM); ru_maxrss would include the parent's at fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, path: str) -> None:
    run = {"baseline": baseline, "baseline_lean": baseline_lean, "ours": ours}[kind]
    if kind == "ours":  # start-up (imports) is not part of the measured work for anyone
        import interp_agent.core.ranking  # noqa: F401
    start = time.perf_counter()
    result = run(path)
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def measure(kind: str, path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=2_000)
    ap.add_argument("--nnz", type=int, default=50, help="active features per row")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    from interp_agent.core.formats import jsonl_to_parquet

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "records.jsonl"
        t = time.perf_counter()
        generate(src, args.rows, args.features, args.nnz)
        print(f"generated {args.rows:,} rows x {args.nnz} active of {args.features:,} features "
              f"({args.rows * args.nnz / 1e6:.1f}M non-zeros, {src.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        jsonl_to_parquet(src, Path(tmp) / "ds")
        print(f"converted to Parquet in {time.perf_counter() - t:.1f} s (one-off)")
        results = {
            "baseline (pure Python, JSONL)": measure("baseline", src),
            "lean baseline (Pearson only)": measure("baseline_lean", src),
            "interp-agent, JSONL": measure("ours", src),
            "interp-agent, Parquet": measure("ours", Path(tmp) / "ds"),
        }
    base = results["baseline (pure Python, JSONL)"]["seconds"]
    lean = results["lean baseline (Pearson only)"]["seconds"]
    print(f"{'path':<32}{'seconds':>9}{'rows/s':>12}{'peak RSS MB':>13}{'vs baseline':>13}{'vs lean':>9}")
    for name, r in results.items():
        print(f"{name:<32}{r['seconds']:>9.2f}{r['rows'] / r['seconds']:>12,.0f}{r['peak_rss_mb']:>13,.0f}"
              f"{base / r['seconds']:>12.1f}x{lean / r['seconds']:>8.1f}x")
    planted = {f"F{i}" for i in range(10)}
    for name, r in results.items():
        print(f"{name}: planted features in its top 10: {len(planted & set(r['top'][:10]))}/10")


if __name__ == "__main__":
    main()
