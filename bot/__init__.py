"""connect-bot: Slack chat-ops for Posit Connect administrators."""

from importlib.metadata import PackageNotFoundError, version

try:  # the version lives in pyproject.toml alone; the installed metadata carries it
    __version__ = version("connect-bot")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
