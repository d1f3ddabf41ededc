"""The Windows stand-in against what win_uri.ps1, WebRequest.psm1 and Ansible.Basic do (ansible.windows 3.3.0)."""
from __future__ import annotations

import importlib.util
import json

import pytest

from ansible_collections.imds.azure.tests.playbooks.windows import CONNECTION_PLUGINS

spec = importlib.util.spec_from_file_location("imds_windows_standin", CONNECTION_PLUGINS / "imds_windows_standin.py")
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)


@pytest.mark.parametrize("header, key", [
    ("Content-Type", "content_type"), ("Retry-After", "retry_after"), ("content-length", "contentlength"),
    ("x-ms-request-id", "xmsrequestid"), ("WWW-Authenticate", "www_authenticate"), ("ETag", "e_tag"),
])
def test_headers_are_flattened_as_win_uri_does(header, key):
    assert standin.snake(header.replace("-", "")) == key


def test_options_as_ansible_basic_reads_them():
    params = standin.validate({"url": "http://127.0.0.1", "timeout": 2.0, "method": "post", "status_code": "202, 418",
                               "_ansible_check_mode": True}, standin.WIN_URI_OPTIONS, "win_uri")
    assert params["url_timeout"] == 2 and params["url_method"] == "post" and params["status_code"] == [202, 418]
    assert params["use_proxy"] is True and params["follow_redirects"] == "safe"
    with pytest.raises(standin.Fail, match="argument for url_timeout is of type System.Double and we were unable "
                                           "to convert to int: Input string was not in a correct format."):
        standin.validate({"url": "http://127.0.0.1", "url_timeout": 2.5}, standin.WIN_URI_OPTIONS, "win_uri")
    with pytest.raises(standin.Fail, match=r"^Unsupported parameters for \(win_uri\) module: proxy\. Supported"):
        standin.validate({"url": "http://127.0.0.1", "proxy": "x"}, standin.WIN_URI_OPTIONS, "win_uri")


def test_only_loopback_is_reached():
    assert standin.loopback_only("http://127.0.0.1:8169/metadata") == ("127.0.0.1", 8169)
    with pytest.raises(standin.Fail, match="only reaches loopback"):
        standin.loopback_only("http://169.254.169.254/metadata/instance")


def win_uri(**args):
    return standin.WinUri({"return_content": True, **args}, None).run()


def test_a_status_outside_the_list_fails_after_the_body_was_read(emulator):
    emu = emulator(profile="linux")
    result = win_uri(url=f"{emu.url}/metadata/instance?api-version=2021-02-01")  # no Metadata header: 400
    assert result["failed"] and result["status_code"] == 400 and json.loads(result["content"])["error"]
    assert result["msg"] == "Status code of request '400' is not in list of valid status codes 200 : BadRequest'."
    ok = win_uri(url=f"{emu.url}/metadata/instance?api-version=2021-02-01", headers={"Metadata": "true"})
    assert ok["status_code"] == 200 and ok["json"]["compute"]["vmId"] and ok["content_type"].startswith("application/json")
    # the Content-Length header, a string, replaces the response property (an integer, -1 without the header)
    assert ok["content_length"] == str(len(ok["content"].encode()))


def test_the_system_proxy_unless_use_proxy_is_false(emulator):
    emu, proxy = emulator(profile="linux"), emulator(profile="windows")
    url = f"{emu.url}/metadata/instance?api-version=2021-02-01"
    standin.WinUri({"url": url, "headers": {"Metadata": "true"}}, proxy.url).run()
    assert len(proxy.requests) == 1 and emu.requests == []
    standin.WinUri({"url": url, "headers": {"Metadata": "true"}, "use_proxy": False}, proxy.url).run()
    assert len(proxy.requests) == 1 and len(emu.requests) == 1


def test_redirects_followed_unless_none(emulator):
    target = emulator(profile="linux")
    location = f"{target.url}/metadata/instance?api-version=2021-02-01"
    emu = emulator(profile="linux", faults={"redirect": {"status": 302, "location": location}})
    url = f"{emu.url}/metadata/instance?api-version=2021-02-01"
    followed = win_uri(url=url, headers={"Metadata": "true"})
    assert followed["status_code"] == 200 and followed["response_uri"] == location
    kept = win_uri(url=url, headers={"Metadata": "true"}, follow_redirects="none", status_code=[302])
    assert kept["status_code"] == 302 and len(target.requests) == 1


def test_timeouts_and_refusals_in_dotnet_words(emulator):
    hang = emulator(profile="linux", faults={"hang": True})
    result = win_uri(url=f"{hang.url}/metadata/instance", url_timeout=1)
    assert result["msg"] == ("Unhandled exception occurred when sending web request. Exception: The operation has "
                             "timed out") and result["status_code"] is None and 0.9 < result["elapsed"] < 3
    refused = win_uri(url="http://127.0.0.1:1/metadata/scheduledevents", method="POST", body="{}")
    assert refused["msg"].endswith('Exception: Exception calling "GetRequestStream" with "0" argument(s): '
                                   '"Unable to connect to the remote server"')
