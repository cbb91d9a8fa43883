"""The kubeconfig's inline certificates: PEM as given, or the base64 of it (`*-data` fields)."""

from __future__ import annotations

import base64

from controller.kube.client import _pem

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_inline_data_is_base64_of_the_pem_as_kubectl_config_flatten_writes_it() -> None:
    assert _pem(base64.b64encode(PEM).decode()) == PEM
    assert _pem(base64.b64encode(PEM)) == PEM


def test_pem_is_taken_as_it_is() -> None:
    assert _pem(PEM.decode()) == PEM
    assert _pem(PEM) == PEM
