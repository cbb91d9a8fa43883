"""metav1.LabelSelector as a pydantic model, with the CEL rules the apiserver checks at apply time.

Used by WorkspacePolicy (which namespaces a grant selects) and by a Workspace's placement (which
DockerHosts it may run on); `core.selectors.selector_matches` evaluates one against labels.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from controller.api.base import ApiModel, cel

MAX_MATCH_LABELS = 16
SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]

# A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


class LabelSelectorRequirement(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0",
                    "In and NotIn need values; Exists and DoesNotExist take none",
                )
            ]
        }
    )

    key: str = Field(max_length=317, pattern=LABEL_KEY_PATTERN)
    operator: SelectorOperator
    values: tuple[Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)], ...] = Field(
        default=(), max_length=16
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if (self.operator in ("In", "NotIn")) != bool(self.values):
            raise ValueError("In and NotIn need values; Exists and DoesNotExist take none")
        return self


class LabelSelector(ApiModel):
    """metav1.LabelSelector. Empty (`{}`) selects everything, as everywhere in Kubernetes."""

    match_labels: dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]] = Field(
        default_factory=dict,
        json_schema_extra={
            "maxProperties": MAX_MATCH_LABELS,
            "x-kubernetes-validations": [
                cel(
                    f"self.all(k, size(k) <= 317 && k.matches(r'{LABEL_KEY_PATTERN}'))",
                    "matchLabels keys must be label keys ([prefix/]name)",
                )
            ],
        },
    )
    match_expressions: tuple[LabelSelectorRequirement, ...] = Field(default=(), max_length=8)

    @field_validator("match_labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > MAX_MATCH_LABELS:
            raise ValueError(f"matchLabels has more than {MAX_MATCH_LABELS} entries")
        for key in labels:
            if len(key) > 317 or not re.fullmatch(LABEL_KEY_PATTERN, key):
                raise ValueError(f"matchLabels key {key!r} is not a label key ([prefix/]name)")
        return labels
