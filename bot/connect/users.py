"""Users: GET /__api__/v1/users/{guid} (the owner of a content item, with their email)."""

from __future__ import annotations

from urllib.parse import quote

from bot.connect.client import HttpCore
from bot.connect.errors import expect_shape
from bot.connect.models import User


class Users:
    def __init__(self, http: HttpCore) -> None:
        self._http = http

    def get(self, guid: str) -> User:
        """One user by GUID. `email` is filled for an admin key; a non-admin key may get it
        empty (Connect's HideEmailAddresses). An unknown GUID raises ConnectError (404)."""
        path = f"v1/users/{quote(guid, safe='')}"
        body = self._http.get(path)
        with expect_shape("GET", path, "a user object"):
            return User.from_json(body)
