"""What runs after the ack, one module per area: call one use case, render its outcome."""
