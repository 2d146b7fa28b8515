"""Clientary: the API client (Basic auth), pollers, record normalisation, actions."""
