"""ImdsError: the message for the user, and the fields a module adds to its failure."""
from __future__ import annotations

from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError


def test_an_answer_with_an_error_status():
    error = ImdsError("IMDS answered 500", url="http://127.0.0.1:9/metadata/instance", status=500, api_version="2021-02-01")
    assert str(error) == "IMDS answered 500" and error.kind == "http"
    assert error.to_result() == {"url": "http://127.0.0.1:9/metadata/instance", "status": 500, "api_version": "2021-02-01"}


def test_a_bad_option_has_no_url_or_status():
    error = ImdsError("timeout must be a number of seconds", kind="config")
    assert error.kind == "config" and error.to_result() == {"url": None, "status": None, "api_version": None}
