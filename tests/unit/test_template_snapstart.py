"""template.yaml's SnapStart option for the billing function: a Parameter, off by default, wired through a Condition;
the API invokes a published version (the alias `live`), which is what SnapStart snapshots."""

from __future__ import annotations

import copy
import logging
from typing import Any

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from wallet_local.paths import TEMPLATE


def _template() -> dict[str, Any]:
    """The template with its intrinsics in their long form (!Ref -> {"Ref": ...}), as SAM reads it."""
    loaded: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return loaded


def test_the_parameter_exists_and_defaults_off() -> None:
    parameter = _template()["Parameters"]["SnapStart"]
    assert parameter["Type"] == "String"
    assert parameter["AllowedValues"] == ["None", "PublishedVersions"]
    assert parameter["Default"] == "None"


def test_billing_function_takes_it_through_a_condition() -> None:
    template = _template()
    assert template["Conditions"]["BillingSnapStart"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "PublishedVersions"]}
    snapstart = template["Resources"]["BillingFunction"]["Properties"]["SnapStart"]
    assert snapstart == {"Fn::If": ["BillingSnapStart", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]}
    others = [
        name
        for name, resource in template["Resources"].items()
        if name != "BillingFunction" and "SnapStart" in resource.get("Properties", {})
    ]
    assert others == []  # the billing function only: the others' cold starts are not on the Games Server's path


def _translated(snapstart: str | None) -> dict[str, Any]:
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = _template()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://packaged/layer.zip"
    values = {name: p["Default"] for name, p in template["Parameters"].items() if "Default" in p}
    values.update({name: "x" for name in template["Parameters"] if name not in values})
    values.update(GamesServerCidrs="203.0.113.0/24", CustomerId="partner")
    if snapstart is not None:
        values["SnapStart"] = snapstart
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    output: dict[str, Any] = translator.translate(
        copy.deepcopy(template), parameter_values=values, get_managed_policy_map=lambda: {}
    )
    return output


def _translated_billing_function(snapstart: str | None) -> dict[str, Any]:
    function: dict[str, Any] = _translated(snapstart)["Resources"]["BillingFunction"]
    return function


@pytest.mark.parametrize("snapstart", [None, "PublishedVersions"])
def test_sam_passes_the_condition_to_the_lambda_function(snapstart: str | None) -> None:
    """SAM keeps the Fn::If as is (CloudFormation resolves it): with the default the property is AWS::NoValue, i.e.
    the function CloudFormation creates is the one it created before the parameter existed."""
    properties = _translated_billing_function(snapstart)["Properties"]
    assert properties["SnapStart"] == {
        "Fn::If": ["BillingSnapStart", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
    }


def test_the_api_invokes_the_published_alias() -> None:
    """SnapStart restores published versions only: the API must call one, through the alias SAM publishes."""
    resources = _translated(None)["Resources"]
    alias = resources["BillingFunctionAliaslive"]
    assert alias["Type"] == "AWS::Lambda::Alias"
    assert alias["Properties"]["FunctionName"] == {"Ref": "BillingFunction"}
    versions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Version"]
    assert [v["Properties"]["FunctionName"] for v in versions] == [{"Ref": "BillingFunction"}]
    body = str(resources["BillingApi"]["Properties"]["Body"])
    assert "BillingFunctionAliaslive" in body  # the integration URI is the alias's, not $LATEST
