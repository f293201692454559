"""Benchmark: MCP round-trip latency over stdio against `interp-agent serve`.

Starts the server as a subprocess (the real transport), then measures, in the same run:
- baseline: `ping` (the protocol's cheapest round trip; `prompts/list` under 2026-07-28,
  which removed ping);
- plan_scale and profile_env (p50 / p95 over N calls each);
- job submission: `inspect` on the toy backend with wait_seconds=0, which starts a worker
  process and returns the job handle (the previous job is cancelled first, untimed).

Prints milliseconds and the ratio of each to the ping baseline. Goals: plan_scale p50
under 50 ms; job submission under 300 ms.

    python tools/bench/mcp_latency.py [--calls 200] [--jobs 20] [--mode legacy|2026-07-28]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import anyio
from mcp import Client, StdioServerParameters


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _timed(n: int, call) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def main(calls: int, jobs: int, mode: str) -> None:
    with tempfile.TemporaryDirectory() as ws:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "interp_agent.cli", "serve", "--workspace", ws]
        )
        async with Client(params, mode=mode) as client:
            plan_args = {
                "model_params": "70B", "tokens": "1B", "d_model": "8192", "selected_layers": 4, "latent_dim": "1M"
            }
            await client.call_tool("profile_env", {})  # warm-up: the first calls import the tool modules
            await client.call_tool("plan_scale", plan_args)
            baseline = client.send_ping if mode == "legacy" else client.list_prompts  # ping is gone in 2026-07-28
            results = {
                "ping (baseline)" if mode == "legacy" else "prompts/list (baseline)": await _timed(calls, baseline),
                "plan_scale": await _timed(calls, lambda: client.call_tool("plan_scale", plan_args)),
                "profile_env": await _timed(calls, lambda: client.call_tool("profile_env", {})),
            }
            submit_ms = []
            for _ in range(jobs):  # each submission starts a worker process: the previous job is cancelled first
                start = time.perf_counter()
                r = await client.call_tool(
                    "inspect", {"model": "toy/a", "criterion": "c", "backend": "toy", "wait_seconds": 0}
                )
                submit_ms.append((time.perf_counter() - start) * 1000)
                assert not r.is_error, r.content
                assert r.structured_content["job"]["started_at"] is not None, "the job was queued, not started"
                await client.call_tool("job_cancel", {"job_id": r.structured_content["job"]["job_id"]})
            results["job submission (inspect)"] = submit_ms
    base = statistics.median(next(iter(results.values())))
    print(f"protocol {mode}, {calls} calls each ({jobs} job submissions), server over stdio")
    print(f"{'call':<28}{'p50 ms':>9}{'p95 ms':>9}{'p50 / base':>12}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<28}{median:>9.1f}{_pct(values, 0.95):>9.1f}{median / base:>11.1f}x")
    plan_p50 = statistics.median(results["plan_scale"])
    submit_p50 = statistics.median(results["job submission (inspect)"])
    print(f"goal plan_scale p50 < 50 ms: {'met' if plan_p50 < 50 else 'NOT met'} ({plan_p50:.1f} ms)")
    print("goal job submission < 300 ms: "
          f"{'met' if _pct(results['job submission (inspect)'], 0.95) < 300 else 'NOT met'} "
          f"(p50 {submit_p50:.1f} ms, p95 {_pct(results['job submission (inspect)'], 0.95):.1f} ms)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--mode", default="legacy", help="legacy (2025-11-25 handshake) or 2026-07-28")
    a = ap.parse_args()
    anyio.run(main, a.calls, a.jobs, a.mode)
