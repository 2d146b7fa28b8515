"""tests/cfn_template.py: the AWS::LanguageExtensions expansion the template tests rely on.

Each case is a rule of CloudFormation's Fn::ForEach (its reference page) or of the values the
transform resolves before SAM; the last test compares the expansion of template.yaml with the SAM
CLI's own (when the SAM virtualenv is there).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cfn_template import (
    ROOT,
    TEMPLATE,
    TemplateError,
    expand_language_extensions,
    load_raw_template,
    load_template,
)

TRANSFORMS = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def _template(**sections: Any) -> dict[str, Any]:
    return {"Transform": list(TRANSFORMS), **sections}


def test_a_loop_makes_one_copy_per_item_with_the_identifier_replaced() -> None:
    template = _template(
        Resources={
            "Fn::ForEach::Topics": [
                "Name",
                ["Success", "Failure"],
                {
                    "Topic${Name}": {
                        "Type": "AWS::SNS::Topic",
                        "Properties": {
                            "TopicName": {"Ref": "Name"},
                            "DisplayName": {"Fn::Sub": "${AWS::StackName} ${Name}"},
                            "Other": {"Ref": "Topic"},
                        },
                    }
                },
            ],
            "Plain": {"Type": "AWS::SNS::Topic"},
        }
    )
    resources = expand_language_extensions(template)["Resources"]
    assert list(resources) == ["TopicSuccess", "TopicFailure", "Plain"]
    assert resources["TopicFailure"]["Properties"] == {
        "TopicName": "Failure",
        "DisplayName": {"Fn::Sub": "${AWS::StackName} Failure"},
        "Other": {"Ref": "Topic"},  # a Ref to anything but the identifier stays
    }


def test_the_ampersand_form_drops_non_alphanumeric_characters_and_loops_nest() -> None:
    template = _template(
        Outputs={
            "Fn::ForEach::Outer": [
                "Host",
                ["10.0.0.1", "10.0.0.2"],
                {
                    "Fn::ForEach::Inner": [
                        "Port",
                        ["80"],
                        {"Url&{Host}x${Port}": {"Value": {"Fn::Sub": "http://${Host}:${Port}"}}},
                    ]
                },
            ]
        }
    )
    outputs = expand_language_extensions(template)["Outputs"]
    assert outputs == {
        "Url10001x80": {"Value": "http://10.0.0.1:80"},
        "Url10002x80": {"Value": "http://10.0.0.2:80"},
    }


def test_a_loop_inside_resource_properties_and_in_conditions() -> None:
    template = _template(
        Conditions={
            "Fn::ForEach::Is": ["Env", ["Dev", "Prod"], {"Is${Env}": {"Fn::Equals": ["a", {"Ref": "Env"}]}}]
        },
        Resources={
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"Tags": [], "Fn::ForEach::T": ["K", ["A", "B"], {"Prop${K}": {"Ref": "K"}}]},
            }
        },
    )
    expanded = expand_language_extensions(template)
    assert expanded["Conditions"] == {
        "IsDev": {"Fn::Equals": ["a", "Dev"]},
        "IsProd": {"Fn::Equals": ["a", "Prod"]},
    }
    assert expanded["Resources"]["Bucket"]["Properties"] == {"Tags": [], "PropA": "A", "PropB": "B"}


def test_a_collection_may_refer_to_a_comma_delimited_list_parameter() -> None:
    template = _template(
        Parameters={"Names": {"Type": "CommaDelimitedList", "Default": "A, B"}},
        Resources={"Fn::ForEach::Q": ["N", {"Ref": "Names"}, {"Queue${N}": {"Type": "AWS::SQS::Queue"}}]},
    )
    assert list(expand_language_extensions(template)["Resources"]) == ["QueueA", "QueueB"]
    given = expand_language_extensions(template, {"Names": ["C"]})
    assert list(given["Resources"]) == ["QueueC"]


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"Fn::ForEach::L": ["N", ["A", "A"], {"Q${N}": {}}]}, "makes 'QA' twice"),
        ({"QA": {}, "Fn::ForEach::L": ["N", ["A"], {"Q${N}": {}}]}, "makes 'QA' twice"),
        ({"Fn::ForEach::L": ["N", ["A"], {"Queue": {}}]}, "must contain ${N}"),
        ({"Fn::ForEach::L": ["N", ["A"]]}, "expected [Identifier, Collection"),
        ({"Fn::ForEach::L": ["MaxAttempts", ["A"], {"Q${MaxAttempts}": {}}]}, "names no parameter"),
        ({"Fn::ForEach::L": ["N", {"Ref": "Nope"}, {"Q${N}": {}}]}, "'Nope', which is no parameter"),
        ({"Fn::ForEach::L": ["N", [{"a": 1}], {"Q${N}": {}}]}, "list of strings"),
    ],
)
def test_a_broken_loop_is_an_error_that_names_it(resources: dict[str, Any], message: str) -> None:
    template = _template(Parameters={"MaxAttempts": {"Type": "Number"}}, Resources=resources)
    with pytest.raises(TemplateError, match=r"Resources.*" + message.replace("[", r"\[").replace("$", r"\$")):
        expand_language_extensions(template)


def test_known_find_in_map_and_sub_values_are_resolved_and_the_rest_left_for_deploy_time() -> None:
    template = _template(
        Mappings={"M": {"A": {"Path": "/a", "Name": "a"}}},
        Resources={
            "Fn::ForEach::L": [
                "N",
                ["A"],
                {
                    "R${N}": {
                        "Properties": {
                            "Path": {"Fn::FindInMap": ["M", {"Ref": "N"}, "Path"]},
                            "Default": {"Fn::FindInMap": ["M", "Z", "Path", {"DefaultValue": "/z"}]},
                            "ByRegion": {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Path"]},
                            "Full": {"Fn::Sub": ["x.${V}", {"V": {"Fn::FindInMap": ["M", "A", "Name"]}}]},
                            "Partial": {"Fn::Sub": ["${Api}/${V}", {"V": "v", "Api": {"Ref": "Api"}}]},
                            "Escaped": {"Fn::Sub": "${!Literal}"},
                            "Ref": {"Ref": {"Fn::Sub": "R${N}"}},
                        }
                    }
                },
            ]
        },
    )
    expanded = expand_language_extensions(template)
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"
    assert expanded["Resources"]["RA"]["Properties"] == {
        "Path": "/a",
        "Default": "/z",
        "ByRegion": {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Path"]},
        "Full": "x.a",
        "Partial": {"Fn::Sub": ["${Api}/v", {"Api": {"Ref": "Api"}}]},
        "Escaped": "${Literal}",
        "Ref": {"Ref": "RA"},
    }


def test_a_missing_mapping_entry_is_an_error() -> None:
    template = _template(
        Mappings={"M": {}}, Resources={"R": {"Properties": {"P": {"Fn::FindInMap": ["M", "A", "B"]}}}}
    )
    with pytest.raises(TemplateError, match=r"Resources\.R\.Properties\.P: Fn::FindInMap \[M, A, B\]"):
        expand_language_extensions(template)


def test_a_template_without_the_transform_is_returned_unchanged() -> None:
    template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Fn::ForEach::L": ["N", ["A"], {}]}}
    expanded = expand_language_extensions(template)
    assert expanded == template and expanded is not template


def test_the_template_expands_into_plain_cloudformation() -> None:
    raw, expanded = load_raw_template(), load_template()
    assert raw["Transform"] == TRANSFORMS
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"
    text = json.dumps(expanded)
    assert "Fn::ForEach" not in text and "${Name}" not in text and "Fn::FindInMap" not in text


# --------------------------------------------------------------------------- against the SAM CLI
_SAM_EXPANSION = r"""
import json, sys
from samcli.lib.cfn_language_extensions.sam_integration import expand_language_extensions
from samcli.yamlhelper import yaml_parse
template = yaml_parse(open(sys.argv[1]).read())
print(json.dumps(expand_language_extensions(template, enabled=True).expanded_template, default=str))
"""


def _sam_python() -> Path:
    for venv in (ROOT / ".sam-venv", Path(os.environ.get("SAM_VENV", "/nonexistent"))):
        if (venv / "bin" / "python").exists():
            return venv / "bin" / "python"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("the SAM CLI is missing in CI: run `make sam-venv` first")
    pytest.skip("SAM CLI not installed: `make sam-venv` installs it into .sam-venv")


def _generated(template: dict[str, Any]) -> dict[str, Any]:
    """What the loops make and what matters of it, in a form both expansions share."""
    resources = template["Resources"]
    triggers = {name for name in resources if name.startswith("New") and name.endswith("TriggerFunction")}
    return {
        "resources": {name: r["Type"] for name, r in resources.items()},
        "outputs": sorted(template["Outputs"]),
        "triggers": {
            name: {
                "TRIGGER": resources[name]["Properties"]["Environment"]["Variables"]["TRIGGER"],
                "Path": resources[name]["Properties"]["Events"]["Push"]["Properties"]["Path"],
                "State": resources[name]["Properties"]["Events"]["Schedule"]["Properties"]["State"],
                "LogGroup": resources[name]["Properties"]["LoggingConfig"]["LogGroup"],
            }
            for name in sorted(triggers)
        },
    }


@pytest.mark.slow
def test_the_expansion_of_the_template_matches_the_sam_clis() -> None:
    # A fixed argv of our own paths, no shell.
    result = subprocess.run(  # noqa: S603
        [str(_sam_python()), "-c", _SAM_EXPANSION, str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    theirs, ours = _generated(json.loads(result.stdout)), _generated(load_template())
    assert len(ours["triggers"]) == 10
    assert ours == theirs
