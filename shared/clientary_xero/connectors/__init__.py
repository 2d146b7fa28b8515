"""Connectors: one folder per service (client, auth, actions, triggers). They know nothing of the engine."""
