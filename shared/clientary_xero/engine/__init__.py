"""The engine: trigger intake (dedupe, match, filter, run creation), the step runner, replay.

It talks to storage through the State/Workflows stores and the step queue, and to connectors only
through the action interface in ``connectors.base``.
"""
