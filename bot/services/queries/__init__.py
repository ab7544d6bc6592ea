"""Read-only questions to Connect: cache listings and content search (`service`), and which
content and runtimes use a package (`impact`).
May import the shared services modules (`bot.services.*` at the top) and connect; no feature."""

from bot.services.queries.impact import ContentUsing, Impact, ImpactFound, PackagesUnsupported
from bot.services.queries.service import CachesListed, ContentFound, Queries

__all__ = [
    "CachesListed",
    "ContentFound",
    "ContentUsing",
    "Impact",
    "ImpactFound",
    "PackagesUnsupported",
    "Queries",
]
