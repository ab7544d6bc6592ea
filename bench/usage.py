"""Usage benchmark (issue 20): counting 2 million hits for a plan, against the simulated Connect.

    .venv/bin/python bench/usage.py                    # 10,000 items, 2,000,000 hits (~1 min)
    .venv/bin/python bench/usage.py --hits 200000      # smaller

The simulator (`FakeConnect(usage_seed=...)`, Connect 2025.04, so the hits endpoint) holds
`--items` items with the seeded Zipf spread of visits; the window is as many whole days back
from the simulator's anchor as hold about `--hits` hits. Each measurement runs in its own
process (`--child`), which reports its wall seconds and its peak RSS (`VmHWM`, see
`peak_rss_mb`: the imports of the bot, the HTTP client and the counts):

* bytes: the answer read through `httpx` and dropped (the transport alone);
* count: `Instrumentation.visits` (the streamed `content_guid` of every hit, counted);
* plan: `UsageCounter.count`, as a plan asks it (server settings, then the count).

The first run pays the simulator's rendering of the window (cached after); it is reported
apart. Bars (issue 20): a plan's count <= 3 s, peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)

KEY = "bench-admin-key"
HITS_PATH = "__api__/v1/instrumentation/content/hits"
SECONDS_BAR = 3.0
RSS_BAR_MB = 150.0


def peak_rss_mb() -> float:
    """This process's peak RSS. `VmHWM`, not `ru_maxrss`: Linux carries `ru_maxrss` over
    `execve`, so a child of the simulator's process (its rendered window: hundreds of MB)
    would report its parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(url: str, mode: str, anchor: float, days: int) -> None:
    """One measurement in this process; prints a JSON line."""
    from bot.connect import ConnectClient
    from bot.connect.usage import rfc3339
    from bot.services.usage import UsageCounter

    until = datetime.fromtimestamp(anchor, UTC)
    since = until - timedelta(days=days)
    client = ConnectClient(url, KEY)
    started = time.perf_counter()
    if mode == "bytes":
        import httpx

        params = {"from": rfc3339(since), "to": rfc3339(until)}
        headers = {"Authorization": f"Key {KEY}"}
        total = 0
        with (
            httpx.Client() as http,
            http.stream("GET", f"{url}/{HITS_PATH}", params=params, headers=headers) as response,
        ):
            for chunk in response.iter_bytes():
                total += len(chunk)
        hits, items = total, 0
    elif mode == "count":
        usage = client.usage.visits(since, until, version="2025.04.0")
        assert not isinstance(usage, type(None))
        hits, items = usage.total, len(usage.visits)  # type: ignore[union-attr]
    else:
        plan = UsageCounter(days=days, clock=lambda: until).count(client)
        if plan.visits is None:
            raise SystemExit(f"no usage: {plan.reason}")
        hits, items = sum(plan.visits.values()), len(plan.visits)
    seconds = time.perf_counter() - started
    rss_mb = peak_rss_mb()
    result = {"mode": mode, "seconds": seconds, "rss_mb": rss_mb, "n": hits, "items": items}
    print(json.dumps(result))


def run_child(url: str, mode: str, anchor: float, days: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, mode, repr(anchor), str(days)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--hits", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="warm runs of each measurement")
    parser.add_argument("--child", nargs=4, metavar=("URL", "MODE", "ANCHOR", "DAYS"))
    args = parser.parse_args()
    if args.child:
        url, mode, anchor, days = args.child
        child(url, mode, float(anchor), int(days))
        return 0

    from sim.connect_seed import generated_seed
    from sim.connect_server import FakeConnect

    connect = FakeConnect(
        api_keys={KEY: "administrator"},
        seed=generated_seed(args.items, seed=20),
        version="2025.04.0",
        usage_seed=20,
        record_requests=False,
    ).start()
    try:
        per_day = sum(connect.usage_rates().values())
        days = max(1, math.ceil(args.hits / per_day))
        anchor = float(int(connect._usage.anchor))  # whole seconds, as the bot's `from`/`to`
        print(f"{args.items} items, {per_day:.0f} visits/day: a window of {days} days")
        cold = run_child(connect.url, "count", anchor, days)
        print(
            f"first count (the simulator renders the window): {cold['seconds']:.2f} s,"
            f" {cold['n']:,} hits over {cold['items']:,} items"
        )
        ok = True
        for mode in ("bytes", "count", "plan"):
            runs = [run_child(connect.url, mode, anchor, days) for _ in range(args.repeat)]
            best = min(r["seconds"] for r in runs)
            rss = max(r["rss_mb"] for r in runs)
            size = f"{runs[0]['n'] / 1e6:.0f} MB" if mode == "bytes" else f"{runs[0]['n']:,} hits"
            times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
            line = f"{mode:>5}: best {best:.2f} s ({times}), peak RSS {rss:.0f} MB, {size}"
            if mode == "plan":
                passed = best <= SECONDS_BAR and rss <= RSS_BAR_MB
                ok = ok and passed
                bars = f"<= {SECONDS_BAR:g} s, <= {RSS_BAR_MB:g} MB"
                line += f"  [{'PASS' if passed else 'FAIL'}: {bars}]"
            print(line)
        return 0 if ok else 1
    finally:
        connect.stop()


if __name__ == "__main__":
    sys.exit(main())
