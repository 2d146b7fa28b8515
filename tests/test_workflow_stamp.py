"""Issue 8, cold start: a saved workflow carries a validation stamp, so a trigger's first event reads
it without checking it again (no pydantic), and anything the stamp does not vouch for (a console
edit, an item typed by hand, a new version of the code) is still checked in full and reported."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import boto3
import pytest

from clientary_xero.errors import PermanentError
from clientary_xero.storage import workflows as workflow_storage
from clientary_xero.storage.workflows import WorkflowStore
from clientary_xero.workflows import shape, stamp
from clientary_xero.workflows import validate as validate_module
from clientary_xero.workflows.loader import from_item, load_workflow_file
from clientary_xero.workflows.model import Branch, Step, Workflow
from clientary_xero.workflows.validate import parse_workflow

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = sorted([*(ROOT / "recipes").glob("*.yaml"), *(ROOT / "examples").glob("*.yaml")])
TRIGGER = "clientary.new_client"
NAME = "{% client.name %}"


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "client-to-contact",
        "trigger": TRIGGER,
        "filter": "{% client.name != '' %}",
        "steps": [
            {"id": "contact", "action": "xero.create_or_update_contact", "input": {"Name": NAME}},
            {
                "if": "{% steps.contact.created %}",
                "then": [{"id": "find", "action": "xero.find_contact", "input": {"Name": NAME}}],
            },
        ],
    }
    doc.update(changes)
    return doc


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the definitions checked in full (``parse_workflow``, as ``_load`` calls it)."""
    seen: list[str] = []
    real = validate_module.parse_workflow

    def counted(doc: Any) -> Workflow:
        seen.append(doc.get("id") if isinstance(doc, dict) else None)
        return real(doc)

    monkeypatch.setattr(validate_module, "parse_workflow", counted)
    return seen


def _table(aws: Any) -> Any:
    return boto3.resource("dynamodb", region_name="us-east-1").Table(aws.workflows_table)


def test_a_saved_workflow_is_stamped_and_read_back_without_a_second_check(
    aws: Any, checks: list[str]
) -> None:
    store = WorkflowStore(cache_seconds=0)
    saved = parse_workflow(document())
    store.put(saved)  # `put` checks what will read back, to stamp it
    assert checks == ["client-to-contact"]
    checks.clear()
    item = _table(aws).get_item(Key={"id": "client-to-contact"})["Item"]
    assert item["validated"] == stamp.stamp(from_item(item))
    (loaded,) = store.for_trigger(TRIGGER)
    assert checks == []  # read as checked
    assert loaded.workflow is not None and loaded.problems == []
    assert loaded.workflow.to_document() == saved.to_document()
    assert isinstance(loaded.workflow.steps[1], Branch) and loaded.workflow.steps[1].id == "if_1"


def test_a_console_edit_that_keeps_the_old_stamp_is_checked_and_reported(aws: Any, checks: list[str]) -> None:
    store = WorkflowStore(cache_seconds=0)
    store.put(parse_workflow(document()))
    checks.clear()
    table = _table(aws)
    item = table.get_item(Key={"id": "client-to-contact"})["Item"]
    item["steps"][0]["action"] = "xero.create_or_update_contac"  # edited, stamp left as it was
    table.put_item(Item=item)
    (loaded,) = store.for_trigger(TRIGGER)
    assert checks == ["client-to-contact"]
    assert loaded.workflow is None
    assert any("unknown action 'xero.create_or_update_contac'" in p for p in loaded.problems)
    # An invalid definition is never stamped: every load reports it.
    assert table.get_item(Key={"id": "client-to-contact"})["Item"]["validated"] == item["validated"]


def test_a_valid_item_without_a_stamp_is_checked_once_and_stamped_back(aws: Any, checks: list[str]) -> None:
    store = WorkflowStore(cache_seconds=0)
    typed = document()
    typed["steps"][1]["id"] = "created"  # typed in the console: defaults left out, branch named
    table = _table(aws)
    table.put_item(Item=typed)
    (first,) = store.for_trigger(TRIGGER)
    assert checks == ["client-to-contact"] and first.workflow is not None
    item = table.get_item(Key={"id": "client-to-contact"})["Item"]
    assert item["validated"] == stamp.stamp(from_item(item))
    (second,) = store.for_trigger(TRIGGER)
    assert checks == ["client-to-contact"]  # not checked again
    assert second.workflow is not None and second.workflow.to_document() == first.workflow.to_document()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(enabled="yes"), id="a value the check converts"),
        pytest.param(lambda d: d.update(enabled=1), id="a number the check reads as true"),
        pytest.param(lambda d: None, id="an unnamed branch, named by the check"),
    ],
)
def test_a_definition_that_reads_otherwise_without_the_check_is_not_stamped(
    aws: Any, checks: list[str], change: Any
) -> None:
    store = WorkflowStore(cache_seconds=0)
    typed = document()
    change(typed)
    table = _table(aws)
    table.put_item(Item=typed)
    for _ in range(2):
        (loaded,) = store.for_trigger(TRIGGER)
        assert loaded.workflow is not None and loaded.workflow.enabled is True
        assert isinstance(loaded.workflow.steps[1], Branch) and loaded.workflow.steps[1].id == "if_1"
    assert checks == ["client-to-contact"] * 2
    assert "validated" not in table.get_item(Key={"id": "client-to-contact"})["Item"]


def test_a_new_version_of_the_checking_code_checks_again_and_restamps(
    aws: Any, checks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = WorkflowStore(cache_seconds=0)
    store.put(parse_workflow(document()))
    checks.clear()
    table = _table(aws)
    old = table.get_item(Key={"id": "client-to-contact"})["Item"]["validated"]
    monkeypatch.setattr(stamp, "_code", "f" * 64)  # what another release's sources hash to
    (loaded,) = store.for_trigger(TRIGGER)
    assert checks == ["client-to-contact"] and loaded.workflow is not None
    item = table.get_item(Key={"id": "client-to-contact"})["Item"]
    assert item["validated"] != old and item["validated"] == stamp.stamp(from_item(item))


def test_a_stamp_written_back_never_creates_an_item_deleted_meanwhile(
    aws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = WorkflowStore(cache_seconds=0)
    heard = logging.getLogger(workflow_storage.__name__)  # heard even when it does not propagate
    heard.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger=workflow_storage.__name__):
            store._remember("deleted-meanwhile", stamp.stamp(document(id="deleted-meanwhile")))
    finally:
        heard.removeHandler(caplog.handler)
    assert "Item" not in _table(aws).get_item(Key={"id": "deleted-meanwhile"})
    assert "could not stamp workflow deleted-meanwhile" in caplog.text
    assert "ConditionalCheckFailedException" in caplog.text


def test_a_stamp_binds_the_definition_and_the_code() -> None:
    doc = document()
    given = stamp.stamp(doc)
    assert given.startswith("sha256:") and stamp.matches(doc, given)
    assert stamp.matches(dict(reversed(list(doc.items()))), given)  # key order is not content
    assert not stamp.matches(document(filter="{% true %}"), given)
    assert not stamp.matches(doc, given.upper()) and not stamp.matches(doc, None)
    assert not stamp.matches(doc, given.removeprefix("sha256:"))
    sources = stamp._digest_sources(ROOT / "shared" / "clientary_xero")
    libraries = stamp._library_versions()
    assert hashlib.sha256(f"{sources}\0{libraries}".encode()).hexdigest() == stamp.code_digest()
    # The libraries the check runs on are named by their installed versions, found without importing.
    for name in ("pydantic-", "pydantic_core-", "jsonata_python-", "google_re2-"):
        assert f";{name}" in f";{libraries}" and ".dist-info" in libraries
    assert stamp._digest_sources(ROOT / "no-such-package") != stamp._digest_sources(ROOT / "no-such-package")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_reading_a_checked_definition_gives_what_the_check_gave(path: Path) -> None:
    checked = load_workflow_file(path)
    normal = checked.to_document()
    read = Workflow.from_document(normal)
    assert read == checked
    # The normal form is what the shape models write too: a run's snapshot is unchanged by the move.
    assert shape.Workflow.model_validate(normal).to_document() == normal
    assert read.to_document() == normal


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        ([], "the workflow definition's (top level) is not a mapping"),
        ({"id": "w", "steps": []}, "the workflow definition has no 'trigger'"),
        ({"id": "w", "trigger": TRIGGER, "steps": {}}, "the workflow definition's steps is not a list"),
        ({"id": "w", "trigger": TRIGGER, "steps": [{"action": "x"}]}, "steps[0] has no 'id'"),
        (
            {
                "id": "w",
                "trigger": TRIGGER,
                "steps": [{"if": "{% 1 %}", "then": [{"id": "a", "action": "x", "input": 3}]}],
            },
            "the workflow definition's steps[0].then[0].input is not a mapping",
        ),
    ],
)
def test_a_snapshot_that_cannot_be_read_is_a_permanent_error_naming_the_place(
    snapshot: Any, reason: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        Workflow.from_document(snapshot)
    assert reason in str(caught.value)


def test_the_check_returns_the_engines_objects() -> None:
    checked = parse_workflow(document())
    assert type(checked) is Workflow and type(checked.steps[0]) is Step


def test_a_document_written_from_a_workflow_shares_nothing_with_it() -> None:
    checked = parse_workflow(document(settings={"account": {"code": "200"}}))
    written = checked.to_document()
    written["settings"]["account"]["code"] = "400"
    written["steps"][0]["input"]["Name"] = "changed"
    assert checked.settings == {"account": {"code": "200"}}
    step = checked.steps[0]
    assert isinstance(step, Step) and step.input == {"Name": NAME}


def test_a_value_no_json_holds_makes_only_its_workflow_invalid(aws: Any) -> None:
    from boto3.dynamodb.types import Binary

    store = WorkflowStore(cache_seconds=0)
    store.put(parse_workflow(document(id="good")))
    _table(aws).put_item(Item=document(id="bad", settings={"account": Binary(b"\x00200")}))
    loaded = {s.id: s for s in store.for_trigger(TRIGGER)}
    assert loaded["good"].workflow is not None and loaded["good"].problems == []
    assert loaded["bad"].workflow is None
    assert any("holds a value that is not JSON" in p for p in loaded["bad"].problems), loaded["bad"].problems
