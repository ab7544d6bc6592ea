"""Running the bot: health endpoints, fail-fast startup, the manifest, and no secret in any log
line, Slack message or error while the main flows run."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft7Validator

from bot import __version__
from bot.logs import configure_logging
from sim.slack import FakeSlack
from sim.stack import ADMIN, BOT_TOKEN, CONNECT_KEY, OPS_CHANNEL, SIGNING_SECRET, start_stack
from tests.slack_helpers import card, wait_ephemeral

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "bot" / "store" / "migrations" / "versions"


def test_health_and_readiness_in_http_mode():
    with start_stack() as stack:
        base = stack.runtime.http.url
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["instance"] == stack.runtime.coordinator.instance_id
        assert {k: body[k] for k in ("ready", "checks")} == {
            "ready": True,
            "checks": {"database": "ok", "scheduler": "ok"},
        }
        stack.runtime.scheduler.shutdown(wait=False)
        not_ready = httpx.get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["scheduler"] == "stopped"
        assert httpx.get(f"{base}/nope").status_code == 404


def _serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("CONNECT_", "SLACK_", "BOT_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_startup_fails_fast_on_missing_settings(tmp_path: Path):
    result = _serve({"CONNECT_API_KEY": "only-the-key-is-set"}, tmp_path)
    assert result.returncode == 2
    assert "CONNECT_SERVER" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert "SLACK_SIGNING_SECRET" in result.stderr
    assert "only-the-key-is-set" not in result.stderr + result.stdout


def test_startup_fails_fast_when_slack_rejects_the_token(tmp_path: Path):
    with FakeSlack(bot_token="xoxb-the-right-one") as slack:
        result = _serve(
            {
                "CONNECT_SERVER": "http://127.0.0.1:9",
                "CONNECT_API_KEY": "k" * 32,
                "SLACK_BOT_TOKEN": "xoxb-wrong-token-value",
                "SLACK_SIGNING_SECRET": "secret-value-123",
                "SLACK_API_URL": slack.api_url,
                "BOT_DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
            },
            tmp_path,
        )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "invalid_auth" in result.stderr
    output = result.stderr + result.stdout
    for secret in ("xoxb-wrong-token-value", "secret-value-123", "k" * 32):
        assert secret not in output


def test_bad_setting_values_get_one_clear_line(tmp_path: Path):
    result = _serve({"PORT": "not-a-port", "BOT_CONFIRM_TTL_SECONDS": "-5"}, tmp_path)
    assert result.returncode == 2
    assert "PORT" in result.stderr and "BOT_CONFIRM_TTL_SECONDS" in result.stderr
    assert "Traceback" not in result.stderr


def test_manifest_creates_the_app_in_one_paste():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    schema = json.loads((ROOT / "tests" / "data" / "slack-manifest.schema.1.0.0.json").read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(manifest), key=str)
    assert errors == []
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/connect" and command["usage_hint"]
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == [
        "channels:history",  # a summary already posted is found in its thread, not posted twice
        "channels:read",  # BOT_ALLOWED_CHANNELS: who may see Home (conversations.members)
        "chat:write",
        "commands",
        "groups:history",  # ... in private channels too
        "groups:read",  # ... in private channels too
        "im:history",  # ... and a DM already sent to an owner
        "im:write",  # owners of failed items get a direct message
        "usergroups:read",
        "users:read",  # `--at HH:MM`: the requester's time zone (users.info)
        "users:read.email",  # ... found by their Connect email
    ]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True


@pytest.mark.parametrize("name", ["manifest.yml", "manifest.http.yml"])
def test_both_manifests_validate_and_enable_app_home(name):
    manifest = yaml.safe_load((ROOT / name).read_text())
    schema = json.loads((ROOT / "tests" / "data" / "slack-manifest.schema.1.0.0.json").read_text())
    assert sorted(Draft7Validator(schema).iter_errors(manifest), key=str) == []
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    settings = manifest["settings"]
    [command] = manifest["features"]["slash_commands"]
    if name == "manifest.yml":  # Socket Mode: no request URL anywhere
        assert settings["socket_mode_enabled"] is True
        assert "url" not in command
        assert "request_url" not in settings["interactivity"]
        assert "request_url" not in settings["event_subscriptions"]
    else:  # HTTP mode: commands, clicks and events all go to the bot's one endpoint
        assert settings["socket_mode_enabled"] is False
        urls = {
            command["url"],
            settings["interactivity"]["request_url"],
            settings["event_subscriptions"]["request_url"],
        }
        assert urls == {"https://connect-bot.example.com/slack/events"}


def test_http_manifest_is_the_socket_mode_one_with_request_urls():
    socket = yaml.safe_load((ROOT / "manifest.yml").read_text())
    http = yaml.safe_load((ROOT / "manifest.http.yml").read_text())
    http["features"]["slash_commands"][0].pop("url")
    http["settings"]["interactivity"].pop("request_url")
    http["settings"]["event_subscriptions"].pop("request_url")
    http["settings"]["socket_mode_enabled"] = True
    assert http == socket  # same scopes, command, events and features: edit both together


@pytest.mark.timeout(90)
def test_no_secret_in_logs_messages_or_errors_during_the_main_flows():
    stream = io.StringIO()
    with start_stack(build_seconds=0.1, bot_admin_users=[ADMIN]) as stack:
        configure_logging(stack.runtime.settings, stream=stream)
        logging.getLogger().setLevel(logging.DEBUG)  # the most a deployment could log
        try:
            stack.requests.command("caches list")
            stack.requests.command("content search --published")
            wait_ephemeral(stack, "content item(s) match", user=ADMIN)
            stack.requests.command("caches delete -l R -V 4.3.0")
            message = card(stack)
            value = message.find_element("cache_delete_confirm")[1]["value"]
            stack.requests.click(OPS_CHANNEL, message.ts, "cache_delete_confirm", value=value)
            assert stack.slack.wait_for(
                lambda f: "finished" in f.message(OPS_CHANNEL, message.ts).all_text(), timeout=10
            )
            stack.requests.command("rebuild --r-version 4.3.0")
            assert stack.slack.wait_for(
                lambda f: any("Start" in m.button_labels() for m in f.messages(OPS_CHANNEL))
            )
            # A forged request makes Bolt log the rejected body.
            body = "token=verification-token-abc&command=%2Fconnect&text=caches+list"
            stack.requests.raw(body, {"Content-Type": "application/x-www-form-urlencoded"})
            stack.connect.inject_faults(error_rate=1.0, status=502, paths="runtime")
            stack.requests.command("caches delete -l R -V 4.2.1")
            wait_ephemeral(stack, "Connect is not answering", user=ADMIN)
        finally:
            logging.getLogger().setLevel(logging.INFO)
        secrets = [CONNECT_KEY, BOT_TOKEN, SIGNING_SECRET]
        logged = stream.getvalue()
        assert "connect call" in logged and "request" in logged  # it did log
        slack_text = json.dumps([c.params for c in stack.slack.calls], default=str)
        replies = json.dumps([p.body for p in stack.slack.response_url_posts], default=str)
        for secret in secrets:
            assert secret not in logged
            assert secret not in slack_text and secret not in replies
        assert "verification-token-abc" not in logged


@pytest.mark.parametrize(
    ("module", "args", "needle"),
    [
        ("bot", [], "Slack chat-ops for Posit Connect"),
        ("bot", ["serve"], "Socket Mode"),
        ("bot", ["check"], "line by line"),
        ("bot", ["migrate"], "schema up to date"),
        ("sim", ["fake-connect"], "--api-key"),
        ("sim", ["fake-slack"], "SLACK_API_URL"),
        ("sim", ["demo"], "simulators"),
    ],
)
def test_cli_help_is_useful(module: str, args: list[str], needle: str):
    result = subprocess.run(
        [sys.executable, "-m", module, *args, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert needle in " ".join(result.stdout.split())


def test_the_product_command_has_only_the_products_verbs(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, timeout=60
    )
    listing = result.stdout.split("Commands:")[1].splitlines()
    assert [line.split()[0] for line in listing if line.startswith("  ") and line.strip()] == [
        "check",
        "migrate",
        "serve",
        "version",
    ]
    version = subprocess.run(
        [sys.executable, "-m", "bot", "version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"connect-bot {__version__}"
    database = tmp_path / "migrated.db"
    migrated = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SLACK_"))},
            "BOT_DATABASE_URL": f"sqlite:///{database}",
        },
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    with sqlite3.connect(database) as conn:
        (head,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert head == sorted(p.name[:4] for p in MIGRATIONS.glob("0*.py"))[-1]


def test_fake_connect_runs_as_a_users_command(tmp_path: Path):
    from bot.connect import ConnectClient, RuntimeCache
    from sim.process import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sim", "fake-connect", "--port", str(port), "--api-key", "k3y"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert f"127.0.0.1:{port}" in server.stdout.readline()
        client = ConnectClient(f"http://127.0.0.1:{port}", "k3y")
        caches = client.caches.list()
        assert (
            RuntimeCache("Python", "3.9.5", "rstudio/content-base:r3.6.3-py3.9.5-jammy") in caches
        )
        assert client.current_user().is_admin
    finally:
        server.terminate()
        server.wait(10)
