"""Use cases: what one handler invocation does, with no AWS event shapes and no Powertools.

Handlers parse their event, call one function here and map the result; the rules live here.
"""
