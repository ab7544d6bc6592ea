"""Container health check: GET /healthz on 127.0.0.1, exit 0 on HTTP 200, else 1.

The port is BOT_HEALTH_PORT when set (the probes' own server, answered even when slow clients
hold every connection of PORT), else PORT. Standard library only (the slim image has no curl).
`connect-bot serve` answers /healthz in both HTTP and Socket Mode, so one probe fits both.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("BOT_HEALTH_PORT") or os.environ.get("PORT") or "3000"
    url = f"http://127.0.0.1:{port}/healthz"
    # No proxies: an HTTP_PROXY set for the bot's outbound calls must not capture loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
