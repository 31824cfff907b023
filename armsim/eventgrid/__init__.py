"""Event Grid: system topic events to webhooks, and custom topics."""
