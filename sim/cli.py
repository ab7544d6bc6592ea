"""`connect-bot-sim` (or `python -m sim`): the simulators and the demo, apart from the product."""

from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Simulators for trying and testing connect-bot without credentials: a Posit Connect
    simulator, a fake Slack, and the demo that plays the main job on them."""


def stop_on_sigterm() -> None:
    """SIGTERM stops a simulator as Ctrl-C does (as PID 1 in a container, or under a
    supervisor, an unhandled SIGTERM would be ignored or kill it without cleaning up)."""
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)


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
    from sim.connect_seed import demo_seed, generated_seed
    from sim.connect_server import FakeConnect

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
    stop_on_sigterm()
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
    from sim.slack import FakeSlack

    server = FakeSlack(
        host=host, port=port, bot_token=bot_token, signing_secret=signing_secret
    ).start()
    server.add_default_workspace()
    click.echo(f"Fake Slack Web API on {server.api_url} (#connect-ops = C0OPS); Ctrl-C to stop")
    stop_on_sigterm()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@main.command()
@click.option("--fast", is_flag=True, help="Shorter build times.")
def demo(fast: bool) -> None:
    """Play the story end to end on simulators (a GDAL upgrade found by `health`, fixed by
    deleting the caches and rebuilding, proved by `health`): no credentials needed."""
    from sim.demo import run_demo

    sys.exit(run_demo(fast=fast))


if __name__ == "__main__":
    main()
