"""Xero: OAuth2 token handling, the API client, actions, webhook verification and triggers."""
