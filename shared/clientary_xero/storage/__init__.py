"""Storage adapters: the only modules that touch boto3.

They speak the project's own errors (``Conflict``, ``NotFound``, ``RetryableError``) and never
leak ``botocore.exceptions.ClientError`` upward.

State table layout (single table, string keys ``pk``/``sk``, TTL attribute ``ttl``):

==============================  ====================  =========================================
pk                              sk                    what
==============================  ====================  =========================================
``RUN#<run_id>``                ``RUN``               a run: workflow snapshot, trigger record, status
``RUN#<run_id>``                ``STEP#<step_id>``    one step's checkpoint: input, output, status
``CURSOR#<trigger>``            ``CURSOR``            a poller's cursor (watermark + ids seen)
``LINK#<kind>#<source id>``     ``LINK``              id link, e.g. Clientary client → Xero contact
``LOCK#<name>``                 ``LOCK``              a lease lock (owner, expiry)
``RATE#<name>``                 ``<window>``          rate-limit buckets
``OAUTH#<state>``               ``STATE``             OAuth ``state`` for the connect flow
==============================  ====================  =========================================

Runs are also listed through the ``gsi1`` index (``gsi1pk = RUNS``, ``gsi1sk = <created>#<run_id>``).
"""
