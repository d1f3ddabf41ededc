"""The shared options and their checks: every bad value is a one-line OptionError that says what to write."""
from __future__ import annotations

import math
import socket

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _options
from ansible_collections.imds.azure.plugins.module_utils._http import _split
from ansible_collections.imds.azure.plugins.module_utils._options import (
    DEFAULT_ENDPOINT,
    DEFAULT_RETRY_TIMEOUT,
    DEFAULT_TIMEOUT,
    OptionError,
    api_version,
    endpoint,
    imds_argument_spec,
    is_default_endpoint,
    seconds,
)


def test_argument_spec_defaults():
    spec = imds_argument_spec()
    assert spec["endpoint"]["default"] == DEFAULT_ENDPOINT == "http://169.254.169.254"
    assert spec["timeout"] == {"type": "float", "default": DEFAULT_TIMEOUT}
    assert spec["retry_timeout"]["default"] == DEFAULT_RETRY_TIMEOUT == 70.0
    assert "default" not in spec["api_version"]  # unset: negotiate the newest


@pytest.mark.parametrize("value, expected", [
    ("http://127.0.0.1:8169", "http://127.0.0.1:8169"),
    (" http://127.0.0.1:8169/ ", "http://127.0.0.1:8169"),
    ("HTTP://IMDS.Example:80", "http://imds.example:80"),
    ("http://[::1]:8169", "http://[::1]:8169"),
])
def test_endpoint_is_normalized(value, expected):
    assert endpoint(value) == expected


@pytest.mark.parametrize("value, needle", [
    ("", "must be a URL such as"),
    (None, "must be a URL such as"),
    ("169.254.169.254", "not an http:// URL with a host"),
    ("https://127.0.0.1", "not an http:// URL with a host"),
    ("http://127.0.0.1:99999", "not a valid URL"),
    ("http://127.0.0.1:0", "not a valid URL"),
    ("http://127.0.0.1/metadata", "has a path, query or fragment"),
    ("http://127.0.0.1?x=1", "has a path, query or fragment"),
    ("http://user@127.0.0.1", "carries a user name or password"),
])
def test_bad_endpoints_say_what_to_write(value, needle):
    with pytest.raises(OptionError, match="endpoint") as caught:
        endpoint(value)
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_password_is_never_repeated():
    with pytest.raises(OptionError) as caught:
        endpoint("http://admin:s3cret@127.0.0.1:8169")
    assert "s3cret" not in str(caught.value) and "admin:***@127.0.0.1:8169" in str(caught.value)


@pytest.mark.parametrize("value, default", [
    ("http://169.254.169.254", True),
    ("http://169.254.169.254:80", True),
    ("http://2852039166", True),  # the same address as one number
    ("http://0251.0376.0251.0376", True),  # in octal
    ("http://[::ffff:169.254.169.254]", True),
    ("http://169.254.169.254:8080", False),
    ("http://127.0.0.1", False),
    ("http://imds.example", False),
])
def test_every_spelling_of_the_default_endpoint(value, default):
    assert is_default_endpoint(value) is default


@pytest.mark.parametrize("value, kwargs, expected", [
    (5, {}, 5.0),
    ("2.5", {}, 2.5),
    (0, {}, 0.0),
    (3600, {"maximum": 3600}, 3600.0),
])
def test_seconds(value, kwargs, expected):
    assert seconds(value, "timeout", **kwargs) == expected


@pytest.mark.parametrize("value, kwargs, needle", [
    (True, {}, "must be a number of seconds, not True"),
    ("soon", {}, "must be a number of seconds, not 'soon'"),
    (math.nan, {}, "must be a finite number of seconds"),
    ("inf", {}, "must be a finite number of seconds"),
    (-1, {}, "must be at least 0 and at most"),
    (0, {"above_minimum": True}, "must be greater than 0"),
    (3601, {"maximum": 3600}, "at most 3600 seconds, not 3601"),
])
def test_bad_seconds_name_the_option(value, kwargs, needle):
    with pytest.raises(OptionError) as caught:
        seconds(value, "timeout", **kwargs)
    assert str(caught.value).startswith("timeout must be") and needle in str(caught.value)


def test_api_version():
    assert api_version(None) is None
    assert api_version(" 2021-02-01 ") == "2021-02-01"
    for bad in ("", "latest", "2021-2-1", 20210201):
        with pytest.raises(OptionError, match="api_version must be a date such as 2021-02-01"):
            api_version(bad)


IMDS = "169.254.169.254"

SPELLINGS = [
    "http://169.254.169.254", "http://169.254.169.254/", "http://169.254.169.254:80", "http://169.254.169.254:080",
    "HTTP://169.254.169.254", "http://2852039166", "http://0251.0376.0251.0376", "http://0xa9fea9fe",
    "http://0XA9FEA9FE", "http://169.254.43518", "http://169.16689662", "http://[::ffff:169.254.169.254]",
    "http://[::ffff:a9fe:a9fe]:80", "http://[0:0:0:0:0:ffff:169.254.169.254]",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_the_imds_address_is_the_default_endpoint(spelling):
    endpoint = _options.endpoint(spelling)
    assert _options.is_default_endpoint(endpoint), endpoint
    host, port, _target = _split(endpoint + "/metadata/instance")
    # the transport reaches that very address (numerically: no name is resolved here)
    address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)[0][4][0]
    assert address in (IMDS, f"::ffff:{IMDS}") and port == 80


@pytest.mark.parametrize("endpoint", ["http://169.254.169.254:8080", "http://169.254.169.253", "http://127.0.0.1",
                                      "http://[::1]:80", "http://imds.example"])
def test_other_addresses_are_not_the_default(endpoint):
    assert not _options.is_default_endpoint(_options.endpoint(endpoint))


@pytest.mark.parametrize("spelling", [
    "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",  # full-width digits
    "http://169\u3002254\u3002169\u3002254",  # ideographic full stops
    "http://169.254.169.254\uff0e",
    "http://\u2460\u2465\u2468.254.169.254",  # circled digits
])
def test_a_non_ascii_spelling_is_refused_before_it_can_reach_imds(spelling):
    """Python resolves these through IDNA to 169.254.169.254: taken as an explicit endpoint, they skipped
    the DMI check and sent a request off a machine that is not on Azure (issue 14, fault matrix)."""
    with pytest.raises(_options.OptionError, match="ASCII"):
        _options.endpoint(spelling)


@pytest.mark.parametrize("endpoint, words", [
    ("http://127.0.0.1:", "not a valid URL"), ("http://[::1]:", "not a valid URL"),
    ("http://169.254.169.254:", "not a valid URL"), ("http://" + "a" * 300 + ":8169", "longer than 253"),
    ("http://127.0.0.1:8o", "not a valid URL"), ("http://127.0.0.1:99999", "not a valid URL"),
])
def test_urls_the_transport_cannot_use_are_refused(endpoint, words):
    with pytest.raises(_options.OptionError, match=words) as caught:
        _options.endpoint(endpoint)
    assert str(caught.value).isprintable() and len(str(caught.value)) < 400


def test_every_spelling_of_the_imds_address_shares_one_rate_limit():
    """IMDS counts 5 requests per second per VM, however the play spells its address."""
    from ansible_collections.imds.azure.plugins.module_utils._client import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport

    paths = {ImdsClient(HttpClientTransport(), endpoint=spelling).limiter.path for spelling in SPELLINGS}
    assert len(paths) == 1
    assert ImdsClient(HttpClientTransport(), endpoint="http://127.0.0.1:8169").limiter.path not in paths
