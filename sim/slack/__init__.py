"""A fake Slack for tests, the demo and benchmarks.

Serves, on loopback, the Web API subset connect-bot uses (``/api/<method>``), ``response_url``
webhooks (``/commands/...``, ``/actions/...``) and, on demand, a Socket Mode WebSocket endpoint.
It keeps channel/thread/ephemeral state so tests can assert on what a person would see, records
every call, and can inject rate limits, errors and latency.

Behaviour follows shared/reference/slack-platform.md (sections 1-5; checklist in 10).

Modules, one concern each:

- ``common``: JSON types, workspace constants, Slack ts/boolean helpers, ``ApiError``;
- ``blocks``: Block Kit validation and helpers;
- ``model``: the recorded data types (messages, calls, interactions, ...);
- ``workspace``: channels, users, usergroups and the message store;
- ``faults``: injected rate limits, errors and latency;
- ``web_api``: the Web API methods and their parameter checks;
- ``response_urls``: response_url webhooks and slash-command acks;
- ``interactions``: slash-command and click payloads sent to the bot;
- ``socket_mode``: the Socket Mode WebSocket server;
- ``queries``: recorded calls, waiting and message queries for tests;
- ``http``: the HTTP server and request handler;
- ``server``: the ``FakeSlack`` facade composing them, and ``main()`` for the CLI.

Standalone: ``python -m sim.slack --port 8090 --defaults``.
"""

from sim.slack.blocks import interactive_elements, validate_blocks
from sim.slack.common import (
    TEAM_DOMAIN,
    TEAM_NAME,
    VERIFICATION_TOKEN,
    ApiHandler,
    JsonDict,
    flag,
    ts_key,
)
from sim.slack.model import (
    ApiCall,
    Channel,
    Ephemeral,
    Interaction,
    Message,
    ResponseUrlPost,
    SocketEnvelope,
    Usergroup,
)
from sim.slack.server import FakeSlack, main

__all__ = [
    "TEAM_DOMAIN",
    "TEAM_NAME",
    "VERIFICATION_TOKEN",
    "ApiCall",
    "ApiHandler",
    "Channel",
    "Ephemeral",
    "FakeSlack",
    "Interaction",
    "JsonDict",
    "Message",
    "ResponseUrlPost",
    "SocketEnvelope",
    "Usergroup",
    "flag",
    "interactive_elements",
    "main",
    "ts_key",
    "validate_blocks",
]
