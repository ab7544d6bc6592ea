"""What the bot does (caches, rebuilds, authorisation, audit); knows nothing of Slack."""
