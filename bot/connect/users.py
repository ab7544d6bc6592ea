"""Users: GET /__api__/v1/users/{guid} (the owner of a content item, with their email)."""

from __future__ import annotations

from urllib.parse import quote

from bot.connect.client import HttpCore
from bot.connect.models import User


class Users:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def get(self, guid: str) -> User:
        """One user by GUID. `email` is filled for an admin key; a non-admin key may get it
        empty (Connect's HideEmailAddresses). An unknown GUID raises ConnectError (404)."""
        return User.from_json(self._http.get(f"v1/users/{quote(guid, safe='')}"))
