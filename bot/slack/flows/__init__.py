"""What happens after the ack: orchestration of services and Slack replies, one module per area."""
