"""Label selectors evaluated against labels: which namespaces a grant covers, which hosts a Workspace may
run on."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError

from controller.api.selectors import LabelSelector


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: every matchLabels entry and every expression must hold."""
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        if requirement.operator == "In" and not (present and value in requirement.values):
            return False
        if requirement.operator == "NotIn" and present and value in requirement.values:
            return False
        if requirement.operator == "Exists" and not present:
            return False
        if requirement.operator == "DoesNotExist" and present:
            return False
    return True


def parse_selector(text: str) -> LabelSelector:
    """A selector in kubectl's `-l` syntax: comma-separated `key=value`, `key==value`, `key!=value`,
    `key`, `!key`, `key in (a,b)` and `key notin (a,b)`. Raises ValueError naming the part it cannot read.
    The empty string selects everything."""
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, object]] = []
    for part in _split_top_level(text):
        word = part.strip()
        if not word:
            raise ValueError(f"selector {text!r} has an empty requirement")
        set_based = _SET_REQUIREMENT.fullmatch(word)
        if set_based:
            values = tuple(v.strip() for v in set_based["values"].split(","))
            if not all(values):
                raise ValueError(f"selector {text!r}: {word!r} has an empty value")
            operator = "In" if set_based["op"] == "in" else "NotIn"
            expressions.append({"key": set_based["key"], "operator": operator, "values": values})
        elif word.startswith("!"):
            expressions.append({"key": word[1:].strip(), "operator": "DoesNotExist"})
        elif "!=" in word:
            key, value = (s.strip() for s in word.split("!=", 1))
            expressions.append({"key": key, "operator": "NotIn", "values": (value,)})
        elif "=" in word:
            key, value = (s.strip() for s in word.replace("==", "=", 1).split("=", 1))
            if key in match_labels and match_labels[key] != value:
                expressions.append({"key": key, "operator": "In", "values": (value,)})
            else:
                match_labels[key] = value
        else:
            expressions.append({"key": word, "operator": "Exists"})
    try:
        return LabelSelector.model_validate({"matchLabels": match_labels, "matchExpressions": expressions})
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        raise ValueError(f"selector {text!r} is not a label selector: {problems}") from None


_SET_REQUIREMENT = re.compile(r"(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")


def _split_top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses; nothing for an empty or blank text."""
    if not text.strip():
        return []
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"selector {text!r} has an unmatched ')'")
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth:
        raise ValueError(f"selector {text!r} has an unmatched '('")
    parts.append(text[start:])
    return parts
