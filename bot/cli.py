"""`connect-bot` command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from bot import __version__

if TYPE_CHECKING:
    from bot.config import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connect-bot")
def main() -> None:
    """Slack chat-ops for Posit Connect administrators: list and delete runtime caches behind
    a dry run and a confirmation, rebuild published content in the background, audit every act;
    one bot for one or several Connect servers (`/connect ... -n staging`).

    Configuration comes from environment variables (or a .env file, or NAME_FILE secret files):
    CONNECT_SERVER and CONNECT_API_KEY (or BOT_CONNECT_SERVERS=name=url,... with
    CONNECT_API_KEY_<NAME>), SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, ...
    Run `connect-bot check` to see what is set and what is missing.

    \b
    Inside: bot/connect (Connect API) <- bot/services (use cases) <- bot/slack (Bolt app:
    routes, handlers, pure parser and views); bot/store (database); bot/sim (simulators).
    """


def load_settings_or_exit() -> Settings:
    """Settings from the environment; a bad value is one clear line per variable, no traceback
    (and never the value: it may be a secret)."""
    from pydantic import ValidationError

    from bot.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in error["loc"]).upper() or "configuration"
            click.echo(f"✘ {name}: {error['msg']}", err=True)
        click.echo("Fix the variables above (see README, Configuration).", err=True)
        sys.exit(2)
    except ValueError as exc:  # a NAME_FILE that can't be read
        click.echo(f"✘ {exc}", err=True)
        sys.exit(2)


@main.command()
def serve() -> None:
    """Run the bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT (/slack/events)."""
    from bot.malloc import limit_arenas

    limit_arenas()  # before any thread starts
    from bot.runtime import serve as run

    sys.exit(run(load_settings_or_exit()))


@main.command()
def check() -> None:
    """Check the configuration line by line: Connect, Slack, database. Exit 0 when all is well."""
    from bot.check import run_check

    sys.exit(run_check(load_settings_or_exit(), out=click.echo))


@main.command("fake-connect")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=3939, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    default=("admin-key",),
    show_default=True,
    help="Administrator API key to accept (repeatable).",
)
@click.option("--publisher-key", multiple=True, help="A key that belongs to a publisher.")
@click.option(
    "--items",
    type=int,
    default=0,
    help="Generate this many published items instead of the demo seed.",
)
@click.option("--build-seconds", type=float, default=2.0, show_default=True)
@click.option("--build-limit", type=int, default=4, show_default=True, help="Concurrent builds.")
@click.option("--sticky-sessions", is_flag=True, help="Behave like a multi-node Connect.")
def fake_connect(
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    publisher_key: tuple[str, ...],
    items: int,
    build_seconds: float,
    build_limit: int,
    sticky_sessions: bool,
) -> None:
    """Run the Posit Connect simulator (runtime caches, tasks, content, builds)."""
    from bot.sim.connect_seed import demo_seed, generated_seed
    from bot.sim.connect_server import FakeConnect

    keys = {key: "administrator" for key in api_keys}
    keys.update({key: "publisher" for key in publisher_key})
    server = FakeConnect(
        api_keys=keys,
        seed=generated_seed(items) if items else demo_seed(),
        build_seconds=build_seconds,
        build_limit=build_limit,
        host=host,
        port=port,
        sticky_sessions=sticky_sessions,
    )
    server.start()
    click.echo(f"Fake Posit Connect on {server.url} (API keys: {len(keys)}); Ctrl-C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@main.command("fake-slack")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3940, show_default=True, type=int)
@click.option("--bot-token", default="xoxb-test-token", show_default=True)
@click.option("--signing-secret", default="test-signing-secret", show_default=True)
def fake_slack(host: str, port: int, bot_token: str, signing_secret: str) -> None:
    """Run the fake Slack Web API (for trying the bot without a workspace).

    It has a #connect-ops channel (C0OPS) with the bot in it, an admin user U0ADMIN, a user
    U0USER and a user group S0ADMINS. Point the bot at it with SLACK_API_URL.
    """
    from bot.sim.slack import FakeSlack

    server = FakeSlack(
        host=host, port=port, bot_token=bot_token, signing_secret=signing_secret
    ).start()
    server.add_default_workspace()
    click.echo(f"Fake Slack Web API on {server.api_url} (#connect-ops = C0OPS); Ctrl-C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@main.command()
@click.option("--fast", is_flag=True, help="Shorter build times.")
def demo(fast: bool) -> None:
    """Play the main job end to end on simulators: no credentials needed."""
    from bot.demo import run_demo

    sys.exit(run_demo(fast=fast))


if __name__ == "__main__":
    main()
