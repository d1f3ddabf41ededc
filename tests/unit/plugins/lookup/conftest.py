"""The lookup without ansible-playbook: its options as ansible-core merges them, the transport faked.

The HTTP transport is replaced by one that hands each request to an in-process IMDS
emulator (``Emulator.answer``, no socket), so the lookup is exercised against the
independent oracle without any network. Scripted failures (timeouts, statuses) can be
put in front of it per path.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from ansible import constants as C
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.utils.plugin_docs import add_fragments

from ansible_collections.imds.azure.plugins.doc_fragments.imds import ModuleDocFragment
from ansible_collections.imds.azure.plugins.lookup import metadata
from ansible_collections.imds.azure.plugins.module_utils._http import HttpClientTransport, HttpResponse, TransportError
from ansible_collections.imds.azure.plugins.module_utils._options import DEFAULT_ENDPOINT
from ansible_collections.imds.azure.plugins.plugin_utils import _lookup_live

LOAD_NAME = "ansible_collections.imds.azure.plugins.lookup.metadata"
ENDPOINT = "http://imds.test"


class _Fragments:
    """What add_fragments needs of the fragment loader: our one fragment file."""

    def get(self, name):
        if name == "imds.azure.imds":
            return type("Fragment", (ModuleDocFragment,), {"ansible_name": "imds.azure.imds"})
        return None


def option_definitions():
    doc = yaml.safe_load(metadata.DOCUMENTATION)
    add_fragments(doc, metadata.__file__, _Fragments())
    return doc["options"]


class FakeImds:
    """Stands in for the HTTP transport: answers through an emulator's answer(), records every call."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.calls = []
        self.scripted = {}  # path -> list of: int status, or an exception to raise

    def script(self, path, *answers):
        self.scripted[path] = list(answers)

    def paths(self):
        return [urlsplit(call["url"]).path for call in self.calls]

    def queries(self):
        return [dict(parse_qsl(urlsplit(call["url"]).query)) for call in self.calls]

    def request(self, method, url, headers, data, timeout, max_bytes):
        self.calls.append({"url": url, "headers": dict(headers or {}), "method": method, "timeout": timeout})
        parts = urlsplit(url)
        # the default endpoint is only ever answered here, by this fake, never sent anywhere
        assert f"{parts.scheme}://{parts.netloc}" in (ENDPOINT, DEFAULT_ENDPOINT), f"a request left for {url}"
        script = self.scripted.get(parts.path)
        if script:
            answer = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(answer, BaseException):
                raise answer
            return HttpResponse(answer, {}, b'{"error": "scripted"}')
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        sent = {name.lower(): value for name, value in (headers or {}).items()}
        reply = self.emulator.answer(method or "GET", parts.path, query, sent, data or b"")
        body = b"".join(reply.chunks())
        extra = {"content-type": reply.content_type} if reply.content_type else {}
        extra.update({name.lower(): value for name, value in reply.headers.items()})
        return HttpResponse(reply.status, extra, body)


TIMEOUT = TransportError("timeout", "timed out")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """A private run folder; nothing remembered between tests (tests/unit/conftest.py isolates the rate limit)."""
    run = tmp_path / "ansible-local-run"
    run.mkdir(mode=0o700)
    monkeypatch.setattr(metadata, "_run_directory", lambda: str(run))
    _lookup_live.clear_memory()
    yield
    _lookup_live.clear_memory()


@pytest.fixture
def run_dir(tmp_path):
    return tmp_path / "ansible-local-run"


@pytest.fixture
def imds(monkeypatch):
    """imds(profile="linux") -> FakeImds now answering every open_url call."""
    from imds_emulator import Emulator  # tools/, on sys.path through tests/conftest.py

    def make(profile="linux", **kwargs):
        fake = FakeImds(Emulator(profile=profile, **kwargs))
        monkeypatch.setattr(HttpClientTransport, "request", lambda self, *args: fake.request(*args))
        return fake

    return make


@pytest.fixture
def lookup():
    """lookup(terms, variables=None, **options): run a fresh LookupModule, as one template call does."""
    C.config.initialize_plugin_configuration_definitions("lookup", LOAD_NAME, option_definitions())

    def run(terms, variables=None, **options):
        # a templar over the variables, as ansible-core gives every lookup
        plugin = metadata.LookupModule(templar=Templar(loader=DataLoader(), variables=variables or {}))
        plugin._load_name = LOAD_NAME
        plugin.ansible_name = "imds.azure.metadata"
        options.setdefault("endpoint", ENDPOINT)
        return plugin.run(terms if isinstance(terms, list) else [terms], variables=variables, **options)

    return run


LOCALHOST = {"inventory_hostname": "localhost", "ansible_connection": "local"}


def trusted(text):
    """A template as it comes from an inventory: trusted on ansible-core 2.19+ (earlier: any string)."""
    try:
        from ansible.template import trust_as_template
    except ImportError:  # ansible-core < 2.19 templates every string
        return text
    return trust_as_template(text)


def remote(name="vm1", facts=None, **extra):
    """The variables a template rendered for a remote host sees."""
    return {"inventory_hostname": name, "ansible_host": "192.0.2.10", "ansible_connection": "ssh",
            "ansible_facts": facts or {}, **extra}
