"""Storage adapters: the only modules that touch boto3.

They speak the project's own errors (``Conflict``, ``NotFound``, ``RetryableError``) and never
leak ``botocore.exceptions.ClientError`` upward.

State table layout (single table, string keys ``pk``/``sk``, TTL attribute ``ttl``):

=================================  ==========================  =====================================
pk                                 sk                          what
=================================  ==========================  =====================================
``RUN#<run_id>``                   ``RUN``                     a run: workflow snapshot, record, status
``RUN#<run_id>``                   ``STEP#<step_id>``          one step's checkpoint: input, output, status
``CURSOR#<trigger>``               ``CURSOR``                  a poller's cursor (watermark + ids seen)
``LINK#<kind>#<source id>``        ``LINK``                    id link, e.g. Clientary client → Xero contact
``LOCK#<name>``                    ``LOCK``                    a lease lock (owner, expiry)
``RATE#xero#<tenant>``             ``BUDGET``                  Xero rate budget: slots in flight, admissions
``PARKED``                         ``<due ms>#<run>#<step>``   a step parked until Xero's daily limit resets
``OAUTH#<state>``                  ``STATE``                   OAuth ``state`` of the connect flow (one-shot)
``XEROCONNECT#<sha256(ticket)>``   ``TICKET``                  a connect ticket made by the CLI (one-shot)
``XEROCHOICE#<sha256(token)>``     ``CHOICE``                  organisations offered to choose from (one-shot)
``NOTICE``                         ``FAILED#<run>#<gen>``      a FAILED run not yet in a digest (notices.py)
``NOTICE#FLAG``                    ``<name>``                  told already: a reconnect, a DLQ's depth
``STREAK#<workflow id>``           ``STREAK``                  a workflow's failed runs in a row
=================================  ==========================  =====================================

Runs are also listed through the ``gsi1`` index (``gsi1pk = RUNS``, ``gsi1sk = <created>#<run_id>``).
"""
