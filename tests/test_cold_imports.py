"""Issue 8, point 6: each handler imports only what its first event needs. The HTTP handlers read
the request id from the event as it is: Powertools' event classes (its ``data_classes`` package,
~40 modules) are not imported for one field."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from clientary_xero.usecases.http_request import request_id

ROOT = Path(__file__).resolve().parents[1]
HEAVY = "aws_lambda_powertools.utilities.data_classes"


@pytest.mark.parametrize("function", ["clientary_trigger", "xero_connect", "xero_webhook"])
def test_an_http_handler_imports_no_powertools_event_classes(function: str) -> None:
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import app; "
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code, str(ROOT / "shared"), str(ROOT / "functions" / function)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_the_request_id_is_read_from_the_event_and_a_malformed_context_has_none() -> None:
    assert request_id({"requestContext": {"requestId": "VwXy1gAAoAMEcQx="}}) == "VwXy1gAAoAMEcQx="
    assert request_id({"requestContext": "not an object"}) is None
    assert request_id({}) is None


def _modules_after(code: str, prefix: str) -> list[str]:
    """Modules starting with ``prefix`` loaded after running ``code`` in a fresh interpreter."""
    loaded = f"print(sorted(m for m in sys.modules if m.startswith({prefix!r})))"
    script = f"import sys; sys.path.insert(0, sys.argv[1])\n{code}\n{loaded}"
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", script, str(ROOT / "shared")], capture_output=True, text=True, check=True
    )
    return eval(done.stdout.strip())  # noqa: S307 - our own child's list of names


def test_a_xero_client_built_for_its_tenant_id_imports_no_httpx() -> None:
    # A linked, unchanged contact step builds the Xero client only to read the tenant id: httpx
    # (and authlib) wait for the first request.
    code = (
        "from clientary_xero.connectors.xero.client import XeroClient\n"
        "import clientary_xero.connectors.xero.auth, clientary_xero.connectors.xero.actions\n"
        "class Tokens:\n"
        "    def tenant_id(self): return 'tenant'\n"
        "assert XeroClient(Tokens()).tokens.tenant_id() == 'tenant'"
    )
    assert _modules_after(code, "httpx") == []
    assert _modules_after(code, "authlib") == []


def test_a_request_still_brings_httpx_with_the_default_timeout() -> None:
    from clientary_xero.connectors.http import new_client

    with new_client() as client:
        assert (client.timeout.read, client.timeout.connect) == (20.0, 5.0)


def test_a_xero_step_and_a_xero_workflow_check_build_no_clientary_actions() -> None:
    code = (
        "from clientary_xero.connectors.base import find_action\n"
        "from clientary_xero.workflows.validate import parse_workflow\n"
        "assert find_action('xero.create_or_update_contact').app == 'xero'\n"
        "parse_workflow({'id': 'w', 'name': 'w', 'trigger': 'clientary.new_contract', 'steps': [\n"
        "    {'id': 'c', 'action': 'xero.create_or_update_contact', 'input': {'Name': 'A'}}]})"
    )
    assert _modules_after(code, "clientary_xero.connectors.clientary.actions") == []


def test_find_action_knows_every_action_and_nothing_else() -> None:
    from clientary_xero.connectors.base import find_action, registry

    for name, spec in registry().items():
        assert find_action(name) is spec
    assert find_action("xero.no_such_action") is None
    assert find_action("nowhere.create") is None
    assert find_action("") is None


def test_a_contact_step_builds_no_invoice_quote_or_report_models() -> None:
    code = (
        "from clientary_xero.connectors.base import find_action\nfind_action('xero.create_or_update_contact')"
    )
    loaded = _modules_after(code, "clientary_xero.connectors.xero.actions.")
    assert loaded == [
        "clientary_xero.connectors.xero.actions.common",
        "clientary_xero.connectors.xero.actions.contact_links",
        "clientary_xero.connectors.xero.actions.contacts",
    ]


def test_the_xero_action_index_names_the_module_of_every_xero_action() -> None:
    from clientary_xero.connectors.base import registry
    from clientary_xero.connectors.xero import actions

    xero = {name: spec.run.__module__ for name, spec in registry().items() if name.startswith("xero.")}
    assert {name: f"{actions.__name__}.{module}" for name, module in actions.ACTION_MODULES.items()} == xero


def test_the_action_handler_imports_no_powertools_batch_utility() -> None:
    code = f"sys.path.insert(0, {str(ROOT / 'functions' / 'step_actions')!r}); import app"
    assert _modules_after(code, "aws_lambda_powertools.utilities.batch") == []


def test_every_table_shares_one_dynamodb_client(aws: object) -> None:
    from clientary_xero.settings import get_settings
    from clientary_xero.storage.aws import table

    settings = get_settings()
    workflows, state = table(settings.workflows_table), table(settings.state_table)
    assert workflows.name != state.name
    assert workflows.meta.client is state.meta.client


def test_storage_builds_no_dynamodb_resource_and_still_speaks_python_types(
    local_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tables' calls go through one plain client with boto3's DynamoDB transformation
    # (storage/aws.py): a resource would cost each first invocation its model and class factory.
    import boto3.session

    from clientary_xero.storage.aws import reset_clients
    from clientary_xero.storage.state import StateStore
    from clientary_xero.workflows.loader import read_document

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a boto3 resource was built")

    monkeypatch.setattr(boto3.session.Session, "resource", refuse)
    reset_clients()
    env = local_env
    env.put_workflow(read_document(ROOT / "shared/clientary_xero/local/samples/invoice_to_xero.yaml"))
    customer = env.clientary.seed_client("Acme Builders")
    lines = [{"title": "Survey", "quantity": 2, "price": 95.0}]
    for _ in range(2):  # the second invoice's contact is linked and unchanged
        invoice = env.clientary.add_invoice(customer["id"], lines)
        assert env.push("clientary.new_invoice", invoice["id"])["statusCode"] == 202
        env.drain()
    runs = StateStore().list_runs()
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    # Items come back in Python types (the resource's deserializer: numbers as Decimal), outputs as written.
    raw = StateStore().get_raw({"pk": f"RUN#{runs[0]['run_id']}", "sk": "RUN"})
    assert raw is not None and raw["sk"] == "RUN" and isinstance(raw["ttl"], Decimal)
    run, steps = StateStore().get_run_and_steps(runs[0]["run_id"])
    assert run is not None and {s["step_id"] for s in steps} == {"contact", "invoice"}
    assert all(isinstance(s["output"], dict) and s["output"] for s in steps)


def test_the_app_of_every_action_is_known_without_its_module_and_unknown_ones_have_none() -> None:
    from clientary_xero.connectors.base import action_app, registry

    for name, spec in registry().items():
        assert action_app(name) == spec.app, name
    assert action_app("xero.no_such_action") is None
    assert action_app("clientary.no_such_action") is None
    assert action_app("nowhere.create") is None


def test_the_queue_of_an_invoice_step_is_found_without_building_the_invoice_models() -> None:
    # A contact step's handler enqueues the invoice step after it: the invoice module is that
    # step's own first invocation's to import.
    code = (
        "from clientary_xero.engine.plan import app_for_step\n"
        "doc = {'id': 'w', 'name': 'w', 'trigger': 'clientary.new_invoice', 'steps': [\n"
        "    {'id': 'c', 'action': 'xero.create_or_update_contact', 'input': {'Name': 'A'}},\n"
        "    {'id': 'i', 'action': 'xero.create_invoice', 'input': {}}]}\n"
        "assert app_for_step(doc, 'i') == 'xero'"
    )
    assert _modules_after(code, "clientary_xero.connectors.xero.actions.") == []


def test_the_step_handler_imports_no_trigger_intake() -> None:
    code = f"sys.path.insert(0, {str(ROOT / 'functions' / 'step_actions')!r}); import app"
    assert _modules_after(code, "clientary_xero.engine.intake") == []
    assert _modules_after(code, "clientary_xero.storage.workflows") == []


def test_the_webhook_route_and_the_parked_run_sweeper_import_no_pydantic() -> None:
    # Their first events need nothing of it: the settings and the webhook's events are dataclasses,
    # the sweeper's work lives apart from the runner (engine/parked.py). pydantic's own import is
    # ~60 ms of CPU of a cold start.
    webhook = (
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'xero_webhook')!r}); import app\n"
        "from clientary_xero.connectors.xero.webhooks import event_for, parse_payload, payload_for\n"
        "from clientary_xero.storage.queue import StepQueue\n"
        "from clientary_xero.storage.secrets import SecretStore\n"
        "payload = parse_payload(payload_for([event_for('INVOICE', 'CREATE', 'i-1', 't-1')]))\n"
        "assert payload.events[0].trigger == 'xero.invoice_created'\n"
        "assert payload.events[0].as_dict()['resourceId'] == 'i-1'"
    )
    assert _modules_after(webhook, "pydantic") == []
    sweeper = (
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'resume_parked')!r}); import app\n"
        "from clientary_xero.engine.parked import resume_parked"
    )
    assert _modules_after(sweeper, "pydantic") == []


def test_a_push_reading_a_stamped_workflow_imports_no_pydantic_and_an_unstamped_one_checks_it() -> None:
    # The trigger's first event: the saved item read as checked (workflows/stamp.py), its filter
    # and first step decided, the step's queue found. Without a matching stamp the definition is
    # checked in full, which is pydantic's (workflows/validate.py).
    load = (
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'clientary_trigger')!r}); import app\n"
        "from clientary_xero.engine.intake import decide\n"
        "from clientary_xero.storage.workflows import _load\n"
        "from clientary_xero.workflows import stamp\n"
        "doc = {'id': 'w', 'name': '', 'enabled': True, 'trigger': 'clientary.new_client',\n"
        "       'filter': \"{% client.name != '' %}\", 'settings': {},\n"
        "       'steps': [{'id': 'c', 'action': 'xero.create_or_update_contact', 'input': {'Name': 'x'}}]}\n"
        "item = {**doc, 'validated': stamp.stamp(doc) if STAMPED else None}\n"
        "stored = _load(item)\n"
        "run = {'run_id': 'r', 'trigger': 'clientary.new_client', 'record': {'id': 1, 'name': 'Ada'}}\n"
        "decision = decide(stored.workflow, stored.problems, run, timeout_ms=1000, max_depth=50)\n"
        "assert (decision.status, decision.step_id, decision.app) == ('QUEUED', 'c', 'xero'), decision\n"
        "assert (stored.unstamped is None) == STAMPED, stored.unstamped"
    )
    assert _modules_after("STAMPED = True\n" + load, "pydantic") == []
    assert "pydantic" in _modules_after("STAMPED = False\n" + load, "pydantic")


def test_an_unchanged_linked_contact_is_answered_without_pydantic_or_the_contact_models() -> None:
    # The step handler's first contact step (engine/runner.py asks the shortcut while the action's
    # module is not loaded): the link read, the organisation's id, the output; no input model.
    code = (
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'step_actions')!r}); import app\n"
        "from clientary_xero.connectors import base\n"
        "from clientary_xero.engine.runner import rendered_digest\n"
        "rendered = {'Name': 'Acme', 'ContactNumber': 'CL-1'}\n"
        "digest = rendered_digest('xero.create_or_update_contact', rendered)\n"
        "class Links:\n"
        "    def get_link(self, kind, source_id):\n"
        "        return {'ContactID': 'c-1', 'tenant': 't-1', 'rendered_sha256': digest,\n"
        "                'contact': {'Name': 'Acme', 'ContactNumber': 'CL-1'}}\n"
        "class Tokens:\n"
        "    def tenant_id(self):\n"
        "        return 't-1'\n"
        "class Client:\n"
        "    tokens = Tokens()\n"
        "ctx = base.ActionContext('r', 's', 'k', 1, Links(), factories={'xero': Client},\n"
        "                         input_sha256=digest)\n"
        "assert not base.loaded('xero.create_or_update_contact')\n"
        "answer = base.shortcut('xero.create_or_update_contact')(ctx, rendered)\n"
        "assert answer['unchanged'] and answer['ContactID'] == 'c-1', answer\n"
        "assert base.shortcut('xero.create_invoice') is None"
    )
    assert _modules_after(code, "pydantic") == []
    assert _modules_after(code, "clientary_xero.connectors.xero.actions.contacts") == []


def test_the_xero_trigger_imports_neither_pydantic_nor_powertools_batch_utility() -> None:
    # Its queued events are read as the webhook route reads them (dataclasses), and its partial
    # batch answers are made as the action handlers make theirs (usecases/sqs_batch.py).
    code = (
        f"sys.path.insert(0, {str(ROOT / 'functions' / 'xero_trigger')!r}); import app\n"
        "from clientary_xero.connectors.xero.webhooks import event_for\n"
        "from clientary_xero.usecases.xero_trigger import EventRecord\n"
        "import json\n"
        "record = {'messageId': 'm', 'receiptHandle': 'h', 'attributes': {'ApproximateReceiveCount': '1'},\n"
        "          'body': json.dumps({'event': event_for('CONTACT', 'CREATE', 'c-1', 't-1')})}\n"
        "assert EventRecord.read(record).body.event.trigger == 'xero.contact_created'"
    )
    assert _modules_after(code, "pydantic") == []
    assert _modules_after(code, "aws_lambda_powertools.utilities.batch") == []
