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
    routes, handlers, pure parser and views); bot/store (database). The simulators and the
    demo are a separate distribution, connect-bot-sim (`connect-bot-sim --help`).
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


@main.command()
def migrate() -> None:
    """Bring the database's schema up to date, then exit (`serve` also does it at start-up;
    replicas starting together apply each migration once)."""
    from bot.store import Database
    from bot.store.coordination import migrate_serialised

    settings = load_settings_or_exit()
    db = Database(settings.database_url)
    try:
        migrate_serialised(db)
    finally:
        db.dispose()
    click.echo("database schema is up to date")


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(f"connect-bot {__version__}")


if __name__ == "__main__":
    main()
