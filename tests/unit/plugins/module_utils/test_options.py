"""The shared options and their checks: every bad value is a one-line OptionError that says what to write."""
from __future__ import annotations

import math

import pytest

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
