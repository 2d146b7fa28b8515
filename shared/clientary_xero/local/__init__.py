"""Local use only: the CLI, the local runner (moto + handlers in-process) and the service sandboxes.

Never imported by a Lambda handler.
"""
