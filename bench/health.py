"""Health-check benchmark: `/connect health` over 300 and 10,000 simulated items.

    .venv/bin/python bench/health.py                 # 300 and 10,000 items
    .venv/bin/python bench/health.py --items 300     # one size

The bot runs as a real process (`python -m bot serve`, SQLite) against the Connect simulator
(every process takes `--start-seconds` to start, or to fail) and a fake Slack, driven by a
signed slash command after a system change (OpenBLAS breaks `numpy`).

Figures and bars (issue 19):
* card: seconds from the command to the card in the channel (bar: 3 s);
* wall: from the command to the final card (the counts in words); bar: 1.25 x (interactive items
  x start time / concurrency) + 10 s;
* peak RSS of the bot over the whole run (bar: 150 MB);
* each interactive item requested once (counted at the simulator).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.connect_seed import generated_seed  # noqa: E402
from sim.connect_server import FakeConnect  # noqa: E402
from sim.process import BotProcess  # noqa: E402
from sim.slack import FakeSlack  # noqa: E402
from sim.slack_client import SlackRequests  # noqa: E402
from sim.stack import (  # noqa: E402
    APP_TOKEN,
    BOT_TOKEN,
    CONNECT_KEY,
    OPS_CHANNEL,
    SIGNING_SECRET,
    start_workspace,
)

CONTENT_URL = re.compile(r"^/content/([^/]+)/$")
INTERACTIVE = {
    "shiny",
    "rmd-shiny",
    "quarto-shiny",
    "python-shiny",
    "python-dash",
    "python-streamlit",
    "python-bokeh",
    "python-panel",
    "python-gradio",
    "jupyter-voila",
    "api",
    "python-api",
    "python-fastapi",
    "tensorflow-saved-model",
}
CARD_BAR = 3.0
RSS_BAR = 150.0


def run(items: int, start_seconds: float, concurrency: int) -> dict[str, float]:
    seed = generated_seed(items, seed=19)
    interactive = sum(
        1 for item in seed.content if item["app_mode"] in INTERACTIVE and item.get("bundle_id")
    )
    connect = FakeConnect(
        api_keys={CONNECT_KEY: "administrator"}, seed=seed, start_seconds=start_seconds
    ).start()
    connect.system_change("openblas", breaks={"Python": ["numpy"]})
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SIGNING_SECRET)
    slack.start()
    start_workspace(slack)
    with tempfile.TemporaryDirectory(prefix="bench-health-") as tmp:
        workdir = Path(tmp)
        bot = BotProcess(
            connect_url=connect.url,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{workdir / 'bot.db'}",
            workdir=workdir,
            extra_env={"BOT_LOG_LEVEL": "WARNING", "BOT_HEALTH_CONCURRENCY": str(concurrency)},
        )
        requests = SlackRequests(bot.events_url, SIGNING_SECRET, slack)
        try:

            def card(final: bool) -> bool:
                return any(
                    "Content health" in m.all_text() and (not final or " checked: " in m.all_text())
                    for m in slack.messages(OPS_CHANNEL)
                )

            started = time.monotonic()
            requests.command("health")
            if not slack.wait_for(lambda _: card(False), 60, interval=0.01):
                raise RuntimeError("no card")
            to_card = time.monotonic() - started
            if not slack.wait_for(lambda _: card(True), 3600, interval=0.1):
                raise RuntimeError("the check did not end")
            wall = time.monotonic() - started
            rss = bot.peak_rss_mb()
            cpu = _cpu_seconds(bot.proc.pid)
        finally:
            requests.close()
            bot.stop()
            slack.stop()
            connect.stop()
    requested = Counter(
        m.group(1)
        for record in list(connect.requests)
        if record.method == "GET" and (m := CONTENT_URL.match(record.path))
    )
    bound = 1.25 * (interactive * start_seconds / concurrency) + 10
    return {
        "items": items,
        "interactive": interactive,
        "to_card": to_card,
        "wall": wall,
        "bound": bound,
        "rss": rss,
        "requested": len(requested),
        "twice": sum(1 for n in requested.values() if n > 1),
        "cpu": cpu,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, action="append", help="sizes (default 300, 10000)")
    parser.add_argument("--start-seconds", type=float, default=0.25)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    ok = True
    for items in args.items or [300, 10_000]:
        r = run(items, args.start_seconds, args.concurrency)
        good = (
            r["to_card"] <= CARD_BAR
            and r["rss"] < RSS_BAR
            and r["wall"] <= r["bound"]
            and r["twice"] == 0
        )
        ok &= good
        print(
            f"{items} items ({r['interactive']} interactive, start {args.start_seconds:g} s,"
            f" concurrency {args.concurrency}): card {r['to_card']:.2f} s (bar {CARD_BAR:g}),"
            f" wall {r['wall']:.1f} s (bar {r['bound']:.1f}), peak RSS {r['rss']:.0f} MB"
            f" (bar {RSS_BAR:g}), bot CPU {r['cpu']:.1f} s, {r['requested']} requested,"
            f" {r['twice']} twice"
            f" -> {'ok' if good else 'MISSED'}",
            flush=True,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
