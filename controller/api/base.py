"""What every model of the API shares: camelCase on the wire, immutability, and CEL rules as data."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, immutable in memory.

    Unknown fields are ignored rather than rejected so an older controller keeps working against a newer CRD
    (the apiserver prunes fields the installed schema does not declare anyway).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


def cel(rule: str, message: str, *, message_expression: str = "", field_path: str = "") -> JsonDict:
    """One `x-kubernetes-validations` entry."""
    validation: JsonDict = {"rule": rule, "message": message}
    if message_expression:
        validation["messageExpression"] = message_expression
    if field_path:
        validation["fieldPath"] = field_path
    return validation
