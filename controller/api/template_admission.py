"""The admission policy that refuses, at `kubectl apply`, a Workspace setting a field its template pins.

Generated into deploy/admission/workspace-templates.yaml (`python -m controller.api.template_admission
--write`): one CEL clause per field a template may hold (CEL cannot name a field from a string), with the
message `controller.core.templates.override_message` gives, so that a refused apply and Stalled/
TemplateOverrideDenied say the same thing.

The binding's parameters are the WorkspaceTemplates of the Workspace's own namespace (a selector that
matches all of them); the policy is evaluated once per template, and only the one the Workspace names
has a say. Without any template in the namespace nothing is refused here: the controller reports a
missing template (Stalled/TemplateNotFound).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from controller.api.template import TEMPLATE_FIELDS, TEMPLATE_KIND, TEMPLATE_PLURAL
from controller.api.workspace import API_VERSION, GROUP, PLURAL

POLICY_NAME = f"{TEMPLATE_PLURAL}.{GROUP}"
PATH = Path(__file__).resolve().parents[2] / "deploy" / "admission" / "workspace-templates.yaml"

_HEADER = """\
# Generated from controller/api/template_admission.py by
# `python -m controller.api.template_admission --write`. Do not edit.
#
# Admission of Workspaces against their WorkspaceTemplate: a Workspace may not set a field its template
# pins (sets, without listing it in allowOverrides). The parameters are the WorkspaceTemplates of the
# Workspace's namespace; the policy runs once per template and only the one spec.templateRef names
# judges. The message is the controller's own (Stalled/TemplateOverrideDenied says the same).
"""


def _clause(field: str) -> str:
    return (
        f"(has(object.spec.{field}) && has(params.spec.template) && has(params.spec.template.{field}) && "
        f"!('{field}' in variables.allowed) ? ['{field}'] : [])"
    )


def pinned_expression() -> str:
    clauses = " +\n".join(_clause(field) for field in TEMPLATE_FIELDS)
    return f"object.spec.templateRef.name != params.metadata.name ? [] :\n{clauses}"


MESSAGE_EXPRESSION = (
    "variables.pinned.map(f, 'spec.' + f).join(', ') + ': pinned by WorkspaceTemplate ' + "
    "params.metadata.name + ', whose allowOverrides is [' + variables.allowed.join(', ') + ']'"
)


def documents() -> list[dict[str, Any]]:
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/name": "workspace-controller"}},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": API_VERSION, "kind": TEMPLATE_KIND},
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [PLURAL],
                        "scope": "*",
                    }
                ]
            },
            "matchConditions": [
                {
                    # A spec that names a template, as written; a metadata update is not judged, so that
                    # a Workspace whose template changed can still be labelled and deleted.
                    "name": "names-a-template",
                    "expression": "has(object.spec.templateRef) && (request.operation == 'CREATE' || "
                    "(!has(object.metadata.deletionTimestamp) && oldObject.spec != object.spec))",
                }
            ],
            "variables": [
                {
                    "name": "allowed",
                    "expression": "has(params.spec.allowOverrides) ? params.spec.allowOverrides : []",
                },
                {"name": "pinned", "expression": pinned_expression()},
            ],
            "validations": [
                {
                    "expression": "size(variables.pinned) == 0",
                    "messageExpression": MESSAGE_EXPRESSION,
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/name": "workspace-controller"}},
        "spec": {
            "policyName": POLICY_NAME,
            "validationActions": ["Deny"],
            # No namespace: the templates of the Workspace's own namespace.
            "paramRef": {"selector": {}, "parameterNotFoundAction": "Allow"},
        },
    }
    return [policy, binding]


class _Dumper(yaml.SafeDumper):
    """CEL over several lines as a literal block (`|-`), as a person would write it."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)


def render() -> str:
    body = yaml.dump_all(documents(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    return _HEADER + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.api.template_admission")
    parser.add_argument("--write", action="store_true", help=f"write {PATH.name}")
    args = parser.parse_args(argv)
    if args.write:
        PATH.write_text(render(), encoding="utf-8")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
