"""Socket Mode for real: the fake Slack hands out a loopback WebSocket URL and delivers the same
command and interaction envelopes; the bot acks them by envelope_id."""

from __future__ import annotations

import pytest

from sim.stack import APP_TOKEN, OPS_CHANNEL, start_stack
from tests.slack_helpers import card, has_cache, real_deletes


@pytest.mark.timeout(60)
def test_deletion_flow_over_socket_mode():
    with start_stack(slack_app_token=APP_TOKEN) as stack:
        assert stack.runtime.settings.socket_mode
        assert stack.slack.socket_connected(timeout=10)
        opened = stack.slack.calls_to("apps.connections.open")
        assert opened and opened[0].headers["authorization"] == f"Bearer {APP_TOKEN}"

        envelope = stack.slack.socket_send_command("caches delete -l python -V 3.11.3")
        ack = stack.slack.socket_wait_ack(envelope, timeout=5)
        assert ack["envelope_id"] == envelope
        assert "Dry-running" in ack["payload"]["text"]

        message = card(stack)
        value = message.find_element("cache_delete_confirm")[1]["value"]
        click = stack.slack.socket_click(
            OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value
        )
        assert stack.slack.socket_wait_ack(click, timeout=5)["envelope_id"] == click
        assert stack.slack.wait_for(
            lambda fake: "deletion finished" in fake.message(OPS_CHANNEL, message.ts).all_text(),
            timeout=10,
        )
        assert len(real_deletes(stack)) == 1
        assert not has_cache(stack, "Python", "3.11.3")


def test_socket_mode_serves_health_but_not_slack_events():
    import httpx

    with start_stack(slack_app_token=APP_TOKEN) as stack:
        base = stack.runtime.http.url
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").json()["ready"] is True
        assert httpx.post(f"{base}/slack/events", content=b"x").status_code == 404
