"""The endpoint option: every spelling of IMDS's address is the default endpoint, and every URL
the transport could not use as written is refused before anything is sent."""
from __future__ import annotations

import socket

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _options
from ansible_collections.imds.azure.plugins.module_utils._http import _split

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
