"""The settings read from the environment (clientary_xero/settings.py): each field from its variable
in capitals, converted to the field's type, a value it cannot take refused naming the variable."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from clientary_xero.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]


def test_an_empty_environment_gives_the_defaults() -> None:
    assert Settings.from_environ({}) == Settings()
    assert Settings().max_attempts == 5 and Settings().step_app == ""


def test_each_field_is_read_from_its_variable_and_converted_to_its_type() -> None:
    settings = Settings.from_environ(
        {
            "STATE_TABLE": "my-state",
            "MAX_ATTEMPTS": " 4 ",
            "XERO_BUDGET_WAIT_SECONDS": "1.5",
            "WORKFLOW_CACHE_SECONDS": "0",
            "CLIENTARY_PUSH_LEGACY_SIGNATURES": "Yes",
            "STEP_APP": "clientary",
            "UNRELATED": "ignored",
        }
    )
    assert settings.state_table == "my-state"
    assert settings.max_attempts == 4 and isinstance(settings.max_attempts, int)
    assert settings.xero_budget_wait_seconds == 1.5
    assert settings.workflow_cache_seconds == 0.0 and isinstance(settings.workflow_cache_seconds, float)
    assert settings.clientary_push_legacy_signatures is True
    assert settings.step_app == "clientary"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("1", True), ("on", True), ("FALSE", False), ("0", False), ("no", False)],
)
def test_booleans_take_the_words_pydantic_took(raw: str, value: bool) -> None:
    assert (
        Settings.from_environ({"CLIENTARY_PUSH_LEGACY_SIGNATURES": raw}).clientary_push_legacy_signatures
        is value
    )


def test_an_empty_variable_keeps_the_default() -> None:
    assert Settings.from_environ({"MAX_ATTEMPTS": "", "STATE_TABLE": ""}) == Settings()


def test_the_region_comes_from_aws_region_then_aws_default_region() -> None:
    assert Settings.from_environ({"AWS_DEFAULT_REGION": "eu-west-2"}).region == "eu-west-2"
    assert Settings.from_environ(
        {"AWS_REGION": "ap-southeast-2", "AWS_DEFAULT_REGION": "eu-west-2"}
    ).region == ("ap-southeast-2")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MAX_ATTEMPTS": "five"}, "MAX_ATTEMPTS must be a whole number, not 'five'"),
        ({"MAX_ATTEMPTS": "4.5"}, "MAX_ATTEMPTS must be a whole number, not '4.5'"),
        ({"SECRET_CACHE_SECONDS": "soon"}, "SECRET_CACHE_SECONDS must be a number, not 'soon'"),
        ({"SECRET_CACHE_SECONDS": "inf"}, "SECRET_CACHE_SECONDS must be a finite number, not 'inf'"),
        (
            {"CLIENTARY_PUSH_LEGACY_SIGNATURES": "maybe"},
            "CLIENTARY_PUSH_LEGACY_SIGNATURES must be true or false",
        ),
        ({"STEP_APP": "quickbooks"}, "STEP_APP must be one of xero, clientary or empty, not 'quickbooks'"),
        ({"REPEATED_FAILURE_THRESHOLD": "0"}, "REPEATED_FAILURE_THRESHOLD must be at least 1, not 0"),
    ],
)
def test_a_value_the_field_cannot_take_is_refused_naming_the_variable(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ(environ)
    assert str(raised.value).startswith(message)


def test_settings_are_frozen_and_replace_makes_a_changed_copy() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_attempts = 9  # type: ignore[misc]
    changed = dataclasses.replace(settings, max_attempts=9)
    assert changed.max_attempts == 9 and settings.max_attempts == 5
    with pytest.raises(SettingsError):
        dataclasses.replace(settings, step_app="nowhere")  # type: ignore[arg-type]


def test_every_field_has_a_default_of_its_own_type_and_names_lists_them() -> None:
    # from_environ converts by the default's type: a field without one could not be read.
    for field in dataclasses.fields(Settings):
        assert field.default is not dataclasses.MISSING, field.name
        assert type(field.default).__name__ == field.type or field.type.startswith("Literal"), field.name
    assert Settings.names() == tuple(f.name for f in dataclasses.fields(Settings))
    assert "state_table" in Settings.names()


def test_reading_the_settings_imports_no_pydantic() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from clientary_xero.settings import get_settings\n"
        "assert get_settings().state_table\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))"
    )
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code, str(ROOT / "shared")], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
