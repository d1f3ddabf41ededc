"""Is this host an Azure VM? The DMI evidence, and when a request is made at all."""
from __future__ import annotations

import os

import pytest

from ansible_collections.imds.azure.plugins.module_utils._detect import (
    AZURE_ASSET_TAG,
    Evidence,
    NotOnAzure,
    dmi_evidence,
    refuse_if_not_azure,
    request_on_azure,
)
from ansible_collections.imds.azure.plugins.module_utils._errors import ImdsError


class Client:
    """What the detection reads of a client: its endpoint and whether it is the default one."""

    def __init__(self, endpoint="http://169.254.169.254"):
        self.endpoint = endpoint
        self.is_default_endpoint = endpoint == "http://169.254.169.254"


def test_azure_asset_tag(tmp_path):
    tag = tmp_path / "chassis_asset_tag"
    tag.write_text(AZURE_ASSET_TAG + "\n")
    evidence = dmi_evidence(str(tag))
    assert evidence.azure is True and "is Azure's" in evidence.reason


def test_another_asset_tag_is_shown_escaped(tmp_path):
    tag = tmp_path / "chassis_asset_tag"
    tag.write_bytes(b"Default\x1b[31m string\n")
    evidence = dmi_evidence(str(tag))
    assert evidence.azure is False and "not Azure's" in evidence.reason
    assert "Default" in evidence.reason and "\x1b" not in evidence.reason  # shown escaped, never sent to the terminal


def test_missing_file_cannot_tell(tmp_path):
    evidence = dmi_evidence(str(tmp_path / "missing"))
    assert evidence.azure is None and "could not be read" in evidence.reason


def test_a_fifo_cannot_tell_and_never_hangs(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    evidence = dmi_evidence(str(fifo))
    assert evidence.azure is None and "not a regular file" in evidence.reason


def test_an_explicit_endpoint_is_always_asked_and_dmi_is_not_read(tmp_path):
    detected = request_on_azure(Client("http://127.0.0.1:9"), lambda timeout: ("answer", timeout), probe_timeout=1.0,
                                dmi_path=str(tmp_path / "missing"))
    assert detected.response == ("answer", None) and "given explicitly" in detected.reason


def test_not_azure_by_dmi_makes_no_request():
    def request(timeout):
        raise AssertionError("no request may be made")

    with pytest.raises(NotOnAzure, match="not Azure's"):
        request_on_azure(Client(), request, probe_timeout=1.0, evidence=Evidence(False, "the tag is not Azure's"))


def test_azure_by_dmi_asks_without_the_probe_timeout():
    detected = request_on_azure(Client(), lambda timeout: timeout, probe_timeout=1.0, evidence=Evidence(True, "Azure's"))
    assert detected.response is None and detected.reason == "Azure's"


def test_cannot_tell_probes_and_no_answer_is_not_azure_with_the_route_hint():
    def request(timeout):
        assert timeout == 2.5
        raise ImdsError("timed out", kind="timeout")

    with pytest.raises(NotOnAzure) as caught:
        request_on_azure(Client(), request, probe_timeout=2.5, evidence=Evidence(None, "no DMI data"))
    assert "did not answer within 2.5 s (timeout)" in caught.value.reason and "imds.azure.route" in caught.value.hint


def test_cannot_tell_and_an_error_answer_is_a_failure():
    def request(timeout):
        raise ImdsError("IMDS answered 500", status=500)

    with pytest.raises(ImdsError, match="500"):
        request_on_azure(Client(), request, probe_timeout=1.0, evidence=Evidence(None, "no DMI data"))


def test_refuse_if_not_azure(tmp_path):
    tag = tmp_path / "chassis_asset_tag"
    tag.write_text("Default string\n")
    with pytest.raises(NotOnAzure):
        refuse_if_not_azure(Client(), str(tag))
    refuse_if_not_azure(Client("http://127.0.0.1:9"), str(tag))  # an explicit endpoint is never refused
