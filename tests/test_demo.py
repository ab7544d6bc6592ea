"""`connect-bot demo`: it plays the main job end to end and prints the conversation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.demo import GUTTER, run_demo
from sim.demo import play as demo
from sim.stack import APP_TOKEN, BOT_TOKEN, CONNECT_KEY, SIGNING_SECRET

SECRETS = (CONNECT_KEY, BOT_TOKEN, APP_TOKEN, SIGNING_SECRET)
REPO = Path(__file__).resolve().parent.parent

# The key moments, in the order a reader meets them: the seed's story (issue 19).
KEY_MOMENTS = [
    # 1. the GDAL upgrade; the caches list shows nothing wrong
    'system_change("gdal", breaks={"R": ["sf", "terra"]})',
    "» ada ran /connect caches list",
    "Runtime caches on Connect (7)",
    "*R 4.3.0*  ·  image `Local`   [ Delete… ]",
    # 2. health finds the broken sf content, and why
    "» ada ran /connect health",
    "Content health #1",
    "14 checked: 7 start, 2 fail to start, 0 could not be checked, 5 skipped.",
    "• Executive KPIs: `libgdal.so.30: cannot open shared object file: No such file or directory`",
    "• Sales Dashboard: `libgdal.so.30: cannot open shared object file",
    "• R 4.3.0 · `Local`: 2 of 2 checked item(s) fail",
    "• `sf` (R): 2 of 2 failing items",
    "[ Delete the caches of these runtimes… ] [ Rebuild the 2 failing items ]",
    # 3. impact --package sf
    "» ada ran /connect impact --package sf",
    "Impact of sf",
    "*3* published item(s) use `sf` in their active bundle, on *2* runtime(s)",
    "• Legacy Finance Report",
    "[ Delete these caches… ] [ Rebuild these 3 items ]",
    # 4. dry run -> confirmation card
    "» ada clicked [ Delete these caches… ]",
    "Delete 2 runtime caches?",
    "*R 4.3.0* · image `Local` · 3 published item(s) use it",
    "Dry run passed.",
    "[ Confirm ] [ Cancel ]",
    # 5. Grace confirms; the card is edited into the result
    "» grace clicked [ Confirm ]",
    "[ Keep them ]  [ Delete ] ← clicked",
    "connect-bot",
    "(edited)",
    "Runtime caches deletion finished",
    "✅ deleted: Successfully deleted runtime cache",
    "✅ All 2 deleted. Confirmed by @grace.",
    "[ Rebuild affected content (4) ]",
    # 6. the plan card
    "» ada clicked [ Rebuild affected content (4) ]",
    "Rebuild plan #1: 4 item(s)",
    "1. Warm-up: 2 item(s)",
    "2. Interactive apps and APIs: 1",
    "3. Rendered and static content: 1",
    "*Parallelism:* 3 build(s) at a time",
    "[ Start ] [ Schedule… ] [ Discard ]",
    # 7. Start -> progress message, thread replies, broadcast summary
    "» grace clicked [ Start ]",
    "100% (4/4)",
    "↳ connect-bot",
    "Rebuild #1 started by @grace: 4 item(s), 3 at a time.",
    "Warm-up finished",
    "4 succeeded, 0 failed.",
    "(replied to a thread)",
    # 8. health again: every item starts
    "» grace ran /connect health",
    "Content health #2",
    "✅ 14 checked: 9 start, 0 fail to start, 0 could not be checked, 5 skipped.",
    # 9. the audit log, only visible to Ada
    "» ada ran /connect audit 10",
    "(only visible to you)",
    "Audit log: last 7",
    "`rebuild_start` → *started*",  # newest first
    "`cache_delete_confirm` → *confirmed*",
    "`cache_delete_request` → *requested*",
    # 10. the summary
    "Health before: 14 checked: 7 start, 2 fail to start",
    "after: 14 checked: 9 start, 0 fail to start",
    "2 cache(s) deleted, 4 item(s) rebuilt, 0 failed",
    "Slack Web API calls",
    "Connect API requests",
    "README.md",
]


def unwrapped(out: str) -> str:
    """The printout with the gutter removed and wrapped lines joined (wrapping depends on
    timings printed earlier in a line)."""
    return " ".join(line.removeprefix(GUTTER).strip() for line in out.splitlines())


def assert_in_order(text: str, fragments: list[str]) -> None:
    position = 0
    for fragment in fragments:
        found = text.find(fragment, position)
        assert found >= 0, f"{fragment!r} missing (or out of order) after position {position}"
        position = found


def test_demo_prints_the_whole_conversation(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(fast=True) == 0
    out, err = capsys.readouterr()
    assert_in_order(unwrapped(out), KEY_MOMENTS)
    for step in range(1, 11):
        assert f"── Step {step}: " in out
    # The audit lines name the acts of both administrators.
    audit = unwrapped(out[out.index("Audit log: last 7") :])
    assert "@grace · `cache_delete` → *succeeded*" in audit
    assert "@ada · `rebuild_plan` → *requested*" in audit
    assert "@grace · `rebuild` → *done*" in audit
    # The second health check, not the rebuild, proves that the content starts again.
    assert unwrapped(out).count("fail to start, 0 could not be checked") == 4  # 2 cards, summary
    # Every user mention is rendered as a name (hostile titles are tests/test_escaping.py's).
    assert "<@U0" not in out and "@ada" in out
    for secret in SECRETS:
        assert secret not in out and secret not in err
    assert "demo failed" not in err


def test_a_step_that_times_out_fails_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "REBUILD_TIMEOUT", 0.0)
    assert run_demo(fast=True) == 1
    out, err = capsys.readouterr()
    assert "demo failed: timed out after 0 s waiting for the rebuild's final summary" in err
    assert "#connect-ops since the last step:" in err  # what the channel showed, to see why
    assert "Step 7" in out and "Step 8" not in out
    for secret in SECRETS:
        assert secret not in out and secret not in err


def test_connect_bot_demo_command(tmp_path: Path) -> None:
    """`python -m sim demo --fast` as `make demo` runs it, in a developer's shell: real settings
    and a proxy in the environment must neither change nor break it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECT_", "SLACK_", "BOT_"))}
    env.update(
        SLACK_APP_TOKEN="xapp-a-real-workspace-token",
        BOT_ALLOWED_CHANNELS="C0ELSEWHERE",
        HTTPS_PROXY="http://127.0.0.1:9",
        PYTHONPATH=str(REPO),
    )
    result = subprocess.run(
        [sys.executable, "-m", "sim", "demo", "--fast"],
        cwd=tmp_path,  # no .env from the repository, and the database stays in a temp dir
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Runtime caches deletion finished" in result.stdout
    assert "4 succeeded, 0 failed" in result.stdout
    assert "9 start, 0 fail to start" in result.stdout
    assert "xapp-a-real-workspace-token" not in result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []
