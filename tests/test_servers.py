"""Several Connect servers from one bot: two simulators at once, over real HTTP.

Each request reaches only the server it names (`-n`), the channel's default, or the default;
buttons act on the server their card was made for; every card and audit record names it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.connect_seed import Seed, demo_seed, make_cache
from sim.connect_server import FakeConnect
from sim.stack import ADMIN, AUDIT_CHANNEL, OPS_CHANNEL, Stack, start_stack
from tests.rebuild_support import plan, rebuild_id_of, wait_final
from tests.slack_helpers import audit_rows, card, wait_audit, wait_ephemeral, wait_message

ONLY_ON_PRODUCTION = ("Python", "3.12.1")  # a cache the staging server does not have


def production_seed() -> Seed:
    seed = demo_seed()
    seed.caches.append(make_cache(*ONLY_ON_PRODUCTION))
    return seed


@pytest.fixture
def stack() -> Iterator[Stack]:
    with start_stack(
        servers={"staging": demo_seed(), "production": production_seed()},
        bot_audit_channel=AUDIT_CHANNEL,
    ) as running:
        yield running


def _requests(connect: FakeConnect, method: str, fragment: str) -> list[object]:
    return [r for r in connect.requests if r.method == method and fragment in r.path]


def _cache_gets(connect: FakeConnect) -> int:
    return len(_requests(connect, "GET", "system/caches/runtime"))


def _real_deletes(connect: FakeConnect) -> list[dict[str, object]]:
    return [
        r.json
        for r in connect.requests
        if r.method == "DELETE" and isinstance(r.json, dict) and r.json.get("dry_run") is False
    ]


def _has_cache(connect: FakeConnect, language: str, version: str) -> bool:
    return any(
        c["language"] == language and c["version"] == version and c["image_name"] == "Local"
        for c in connect.caches()
    )


def test_caches_list_reaches_only_the_named_server_and_names_it(stack: Stack) -> None:
    staging, production = stack.connects["staging"], stack.connects["production"]
    assert stack.requests.command("caches list -n production").status_code == 200
    listed = wait_message(stack, lambda m: "Runtime caches on" in m.all_text())
    text = listed.all_text()
    assert "Connect production" in text and "3.12.1" in text
    assert _cache_gets(production) == 1 and _cache_gets(staging) == 0
    # Without -n: the default server (the first listed), which has no 3.12.1.
    assert stack.requests.command("caches list").status_code == 200
    second = wait_message(stack, lambda m: "Connect staging" in m.all_text())
    assert "3.12.1" not in second.all_text()
    assert _cache_gets(staging) == 1 and _cache_gets(production) == 1


def test_unknown_server_is_refused_before_any_connect_request(stack: Stack) -> None:
    before = {name: len(c.requests) for name, c in stack.connects.items()}
    for text in (
        "caches list -n nowhere",
        "--name=nowhere rebuild",
        "caches delete -l r -V 4.3.0 -n nowhere",
    ):
        response = stack.requests.command(text)
        assert response.status_code == 200
        answer = response.json()["text"]
        assert "No Connect server named nowhere" in answer
        blocks = str(response.json()["blocks"])
        assert "`staging`" in blocks and "`production`" in blocks
    assert {name: len(c.requests) for name, c in stack.connects.items()} == before
    assert stack.slack.messages(OPS_CHANNEL) == []


def test_channel_default_server_applies() -> None:
    with start_stack(
        servers={"staging": demo_seed(), "production": production_seed()},
        bot_channel_servers=[f"{OPS_CHANNEL}=production"],
    ) as stack:
        assert stack.requests.command("caches list").status_code == 200
        listed = wait_message(stack, lambda m: "Runtime caches on" in m.all_text())
        assert "Connect production" in listed.all_text()
        assert _cache_gets(stack.connects["production"]) == 1
        assert _cache_gets(stack.connects["staging"]) == 0
        # -n still wins over the channel's default.
        assert stack.requests.command("caches list -n staging").status_code == 200
        wait_message(stack, lambda m: "Connect staging" in m.all_text())
        assert _cache_gets(stack.connects["staging"]) == 1


def test_deletion_reaches_only_its_server_and_the_audit_names_it(stack: Stack) -> None:
    staging, production = stack.connects["staging"], stack.connects["production"]
    response = stack.requests.command("caches delete -l python -V 3.11.3 -n production")
    assert response.status_code == 200
    message = card(stack)
    assert "on *production*" in str(message.blocks)
    value = message.find_element("cache_delete_confirm")[1]["value"]
    stack.requests.click(OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value)
    assert stack.slack.wait_for(
        lambda fake: "deletion finished" in fake.message(OPS_CHANNEL, message.ts).all_text()
    )
    assert _real_deletes(production) == [
        {"language": "Python", "version": "3.11.3", "image_name": "Local", "dry_run": False}
    ]
    assert _real_deletes(staging) == [] and _requests(staging, "DELETE", "caches") == []
    assert not _has_cache(production, "Python", "3.11.3")
    assert _has_cache(staging, "Python", "3.11.3")
    assert wait_audit(stack, "cache_delete", "succeeded")
    rows = [r for r in audit_rows(stack) if r.action.startswith("cache_delete")]
    assert rows and {r.server for r in rows} == {"production"}
    # The audit channel's copy names the server too.
    notice = wait_message(stack, lambda m: "cache_delete" in m.all_text(), channel=AUDIT_CHANNEL)
    assert "production" in notice.all_text()


def test_buttons_act_on_the_server_of_their_card(stack: Stack) -> None:
    staging, production = stack.connects["staging"], stack.connects["production"]
    stack.requests.command("caches list -n production")
    listed = wait_message(stack, lambda m: "Connect production" in m.all_text())
    button = next(
        b
        for b in listed.buttons()
        if b.get("action_id") == "cache_delete_start" and "3.12.1" in b.get("value", "")
    )
    stack.requests.click(OPS_CHANNEL, listed.ts, "cache_delete_start", value=button["value"])
    deletion = card(stack)
    assert "3.12.1" in deletion.all_text()
    dry = [r.json for r in production.requests if r.method == "DELETE"]
    assert dry == [
        {"language": "Python", "version": "3.12.1", "image_name": "Local", "dry_run": True}
    ]
    assert [r for r in staging.requests if r.method == "DELETE"] == []


def test_rebuild_builds_only_on_its_server_and_says_which(stack: Stack) -> None:
    staging, production = stack.connects["staging"], stack.connects["production"]
    message = plan(stack, "rebuild -n staging --parallelism 4")
    assert "on *staging*" in str(message.blocks)
    stack.requests.click(OPS_CHANNEL, message.ts, "rebuild_start", value=None)
    final = wait_final(stack.slack, message.ts)
    assert f"Rebuild #{rebuild_id_of(message)} on *staging*" in final.all_text()
    published = [item["guid"] for item in staging.content() if item["bundle_id"]]
    assert sorted(staging.builds_started()) == sorted(published)
    assert production.builds_started() == []
    rebuild_id = rebuild_id_of(message)
    assert wait_audit(stack, "rebuild", "done")
    rows = [r for r in audit_rows(stack) if r.action.startswith("rebuild")]
    assert {r.action for r in rows} >= {"rebuild_plan", "rebuild_start", "rebuild"}
    assert {r.server for r in rows} == {"staging"}
    assert any(r.reference == str(rebuild_id) for r in rows if r.action == "rebuild")

    # `rebuild history -n NAME` lists that server's rebuilds only.
    stack.requests.command("rebuild history -n production")
    wait_ephemeral(stack, "No rebuilds yet")  # staging's rebuild is not production's
    stack.requests.command("rebuild history -n staging")
    history = wait_ephemeral(stack, "Rebuilds: last 1").all_text()
    assert f"#{rebuild_id}" in history and "staging" in history
    stack.requests.command("rebuild history -n nowhere")
    wait_ephemeral(stack, "nowhere")


def test_servers_command_lists_each_with_version_and_reachability(stack: Stack) -> None:
    stack.connects["production"].stop()  # production is down
    assert stack.requests.command("servers").status_code == 200
    text = wait_ephemeral(stack, "Connect servers", user=ADMIN).all_text()
    assert "*staging* (default)" in text and stack.connects["staging"].url in text
    assert "2024.08.0" in text
    assert "*production*" in text and "not reachable" in text
