# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""The emulator: one VM's IMDS on one address, served in a daemon thread."""
from __future__ import annotations

import base64
import copy
import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from . import _checks as check
from ._checks import EmulatorError
from ._control import control
from ._documents import check_loadbalancer, document_for_version, dump_json, load_profile, pkcs7_envelope, \
    public_document, text_of
from ._events import Clock, ScheduledEvents, check_event, load_timeline
from ._faults import Counters, answer_faults, check_faults, in_scope, plan, public_faults
from ._replies import Reply
from ._server import make_server
from ._tables import API_VERSIONS, ATTESTED_FIELD_SINCE, CATEGORY_SINCE, FORMAT_ERROR, FORWARDED_ERROR, \
    HEADER_ERROR, LEAF_JSON_ERROR, LOADBALANCER_ERRORS, LOADBALANCER_MISSING, MAX_LOGGED_REQUESTS, \
    SCHEDULED_EVENTS_VERSIONS, TEXT_TYPE, VERSION_ERROR_NEW, VERSION_ERROR_OLD

MAX_LATENCY = 60.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _category(path: str) -> str | None:
    if path == "/metadata/instance" or path.startswith("/metadata/instance/"):
        return "instance"
    return {
        "/metadata/scheduledevents": "scheduledevents",
        "/metadata/attested/document": "attested",
        "/metadata/loadbalancer": "loadbalancer",
        "/metadata/identity/oauth2/token": "identity-token",
        "/metadata/identity/info": "identity-info",
    }.get(path)


def rename_vm(document: dict, name: str | None = None, fault_domain: int | None = None,
              update_domain: int | None = None) -> dict:
    """A copy of an instance document for another VM: its name (and a vmId, resourceId and
    computer name of its own), fault domain and update domain."""
    document = copy.deepcopy(document)
    compute = document.get("compute")
    if not isinstance(compute, dict):
        return document
    if name is not None and name != compute.get("name"):
        compute["name"] = name
        compute["vmId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"imds-emulator:{compute.get('vmId', '')}:{name}"))
        if isinstance(compute.get("resourceId"), str) and "/" in compute["resourceId"]:
            compute["resourceId"] = f"{compute['resourceId'].rsplit('/', 1)[0]}/{name}"
        if isinstance(compute.get("osProfile"), dict) and "computerName" in compute["osProfile"]:
            compute["osProfile"]["computerName"] = name
    if fault_domain is not None:
        compute["platformFaultDomain"] = str(fault_domain)
    if update_domain is not None:
        compute["platformUpdateDomain"] = str(update_domain)
    return document


class Emulator:
    """An IMDS emulator serving one VM on ``host:port`` in a daemon thread.

    ``events`` shares a scheduled-events document with other emulators (the VMs of one
    availability set, see Fleet); ``timeline`` (a file or its object) adds its events;
    ``name``, ``fault_domain`` and ``update_domain`` make the profile another VM's.
    """

    def __init__(self, *, profile: str = "linux", host: str = "127.0.0.1", port: int = 0,
                 faults: Mapping[str, Any] | None = None, latency: float = 0.0,
                 log_path: str | Path | None = None, profile_file: str | Path | None = None,
                 name: str | None = None, fault_domain: int | None = None, update_domain: int | None = None,
                 events: ScheduledEvents | None = None, timeline: str | Path | Mapping[str, Any] | None = None):
        self.profile_name = profile if profile_file is None else str(profile_file)
        self.profile = load_profile(profile, profile_file)
        label = f"profile {self.profile_name!r}"
        if name is not None:
            check.text(name, "name", empty=False)
        for what, value in (("fault_domain", fault_domain), ("update_domain", update_domain)):
            if value is not None:
                check.count(value, what, maximum=99)
        self.document = rename_vm(public_document(self.profile), name, fault_domain, update_domain)
        self.host = host
        self.port = check.count(port, "port", maximum=65535)
        self.latency = check.number(latency, "latency", maximum=MAX_LATENCY)
        self.log_path = Path(log_path) if log_path is not None else None
        self.fleet: Any = None  # the Fleet this VM belongs to, if any (set by Fleet)
        self.fleet_name: str | None = None  # set by Fleet: request log entries then name the VM
        self.availability_set: str | None = None  # set by Fleet
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._faults = check_faults(faults)
        self._counters = Counters(time.monotonic())
        self._requests: list[dict] = []
        self._log_file: Any = None
        self._connections: set[socket.socket] = set()
        self.events = events if events is not None else ScheduledEvents(Clock())
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loadbalancer = check_loadbalancer(self.profile.get("_loadbalancer"), label)
        compute = self.document.get("compute") if isinstance(self.document.get("compute"), dict) else {}
        self._compute: dict = compute
        vm_id = str(compute.get("vmId") or "00000000-0000-0000-0000-000000000000")
        identity = self.profile.get("_identity") if isinstance(self.profile.get("_identity"), dict) else {}
        self._identity = {
            "enabled": bool(identity.get("enabled", True)),
            "tenant_id": str(identity.get("tenant_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"tenant:{vm_id}")),
            "client_id": str(identity.get("client_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"client:{vm_id}")),
            "object_id": str(identity.get("object_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"object:{vm_id}")),
        }
        if timeline is not None:
            self.load_timeline(timeline)

    @property
    def name(self) -> str:
        """The VM's name (``compute.name``), the default ``Resources`` of its events."""
        return str(self._compute.get("name") or "vm")

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> "Emulator":
        """Listen and serve in a daemon thread (OSError when the address cannot be bound)."""
        if self._server is not None:
            return self
        if self.log_path is not None and self._log_file is None:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = open(self.log_path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
            except OSError as exc:
                raise EmulatorError(f"cannot open the log file {self.log_path}: {exc.strerror or exc}") from None
        try:
            server = make_server(self.host, self.port, self)
        except OSError:
            self._close_log()
            raise
        self._server = server
        self.port = server.server_address[1]
        self._stop.clear()
        with self._lock:
            self._counters.set_at = time.monotonic()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"imds-emulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; connections held by faults (hang, dribble) are closed."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_log()

    def _close_log(self) -> None:
        with self._lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- log, faults, events, clock ----------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        """The IMDS requests served so far (a copy), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_log(self) -> int:
        with self._lock:
            count = len(self._requests)
            self._requests.clear()
            return count

    @property
    def faults(self) -> dict:
        with self._lock:
            return public_faults(self._faults)

    def set_faults(self, **faults: Any) -> dict:
        """Replace all fault switches; counters and the fault clock start again."""
        checked = check_faults(faults)
        with self._lock:
            self._faults = checked
            self._counters = Counters(time.monotonic())
        return public_faults(checked)

    def add_event(self, *, event_type: str = "Reboot", resources: list[str] | None = None,
                  not_before_seconds: float | None = 300, status: str = "Scheduled",
                  description: str | None = None, event_source: str = "Platform",
                  duration_seconds: int = -1, event_id: str | None = None,
                  resource_type: str = "VirtualMachine",
                  complete_after_seconds: float | None = None) -> dict:
        """Schedule an event; returns it as the newest scheduled-events version shows it.

        A Scheduled event starts by itself once NotBefore has passed (or when a VM approves
        it); a Started event leaves the document ``complete_after_seconds`` after it started
        (None: after DurationInSeconds when that is positive, else never).
        """
        fields = check_event(dict(event_type=event_type, resources=resources, not_before_seconds=not_before_seconds,
                                  status=status, description=description, event_source=event_source,
                                  duration_seconds=duration_seconds, event_id=event_id,
                                  resource_type=resource_type, complete_after_seconds=complete_after_seconds),
                             [self.name])
        return self.events.add(fields)

    def load_timeline(self, timeline: str | Path | Mapping[str, Any]) -> list[dict]:
        """Add every event of a timeline (a JSON file or its object), each at its ``at``.

        In a fleet, each event goes to the availability set of its ``resources``.
        """
        if self.fleet is not None:
            return self.fleet.load_timeline(timeline)
        loaded = load_timeline(timeline)
        return [self.events.add({**fields, "resources": fields["resources"] or [self.name]}, at)
                for at, fields in loaded]

    def end_event(self, event_id: str | None = None) -> int:
        """End an event now (all of them, pending ones included, with None)."""
        return self.events.end(event_id)

    def events_document(self, version: str = SCHEDULED_EVENTS_VERSIONS[-1]) -> dict:
        """The scheduled-events document as ``version`` shows it now."""
        return self.events.document(version)

    def advance_clock(self, seconds: float) -> float:
        """Move the scheduled events' clock forward (shared by a fleet); returns the new time."""
        return self.events.clock.advance(seconds)

    # -- internals used by the handler -------------------------------------------------

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _log(self, entry: dict) -> None:
        if self.fleet_name is not None:
            entry["vm"] = self.fleet_name
        with self._lock:
            self._requests.append(entry)
            if len(self._requests) > MAX_LOGGED_REQUESTS:
                del self._requests[:len(self._requests) - MAX_LOGGED_REQUESTS]
            if self._log_file is not None:
                self._log_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
                self._log_file.flush()

    def _plan(self, now: float) -> tuple[dict, float, bool, Reply | None]:
        """Count the request against the faults: the faults, the wait, a takeover, a forced reply."""
        with self._lock:
            faults, counters = self._faults, self._counters
        decided = plan(faults, counters, now, self.document, self._lock)
        return faults, self.latency + decided.wait, decided.takeover, decided.reply

    def _plan_for(self, path: str, now: float) -> tuple[dict, float, bool, Reply | None]:
        """``_plan`` for a request of ``path``: outside ``only_path`` only the region's switches act."""
        with self._lock:
            faults = self._faults
        if in_scope(faults, path):
            return self._plan(now)
        return answer_faults(faults), self.latency, False, None

    def _muted(self) -> bool:
        with self._lock:
            return bool(self._faults.get("mute"))

    def control(self, method: str, path: str, body: bytes) -> Reply:
        """``/_emulator/...``: see _control."""
        return control(self, method, path, body)

    # -- IMDS ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
               body: bytes, faults: Mapping[str, Any] | None = None) -> Reply:
        """Answer one IMDS request as the service would (faults only change versions/wording)."""
        faults = self._faults if faults is None else faults
        if headers.get("metadata", "").lower() != "true":
            return Reply.error(400, HEADER_ERROR)
        if "x-forwarded-for" in headers:
            return Reply.error(400, FORWARDED_ERROR)
        if method not in ("GET", "POST"):
            return Reply.error(405, headers={"Allow": "GET, POST"})
        if path == "/metadata/versions":
            if method != "GET":
                return Reply.error(405, headers={"Allow": "GET"})
            return Reply.json(200, {"apiVersions": list(faults.get("versions") or API_VERSIONS)})
        category = _category(path)
        if category is None:
            return Reply.error(404)
        if method == "POST" and category == "loadbalancer":
            return Reply.error(405, f'Http method isn\'t allowed: Path = "{path}", Method = "{method}"',
                               headers={"Allow": "GET"})
        if method == "POST" and category != "scheduledevents":
            return Reply.error(405, headers={"Allow": "GET"})
        allowed = self._versions_for(category, faults)
        version = query.get("api-version")
        if version not in allowed:
            return self._version_error(allowed, faults)
        fmt = query.get("format")
        if category == "instance":
            return self._instance(path, version, fmt)
        if fmt not in (None, "json"):
            return Reply.error(400, FORMAT_ERROR)
        if category == "scheduledevents":
            return self._scheduled_events(method, version, body)
        if category == "attested":
            return self._attested(version, query)
        if category == "loadbalancer":
            return self._load_balancer(faults)
        if category == "identity-info":
            if not self._identity["enabled"]:
                return Reply.json(400, {"error": "invalid_request", "error_description": "Identity not found"})
            return Reply.json(200, {"tenantId": self._identity["tenant_id"]})
        return self._token(query)

    def _versions_for(self, category: str, faults: Mapping[str, Any]) -> list[str]:
        if category == "scheduledevents":
            return list(SCHEDULED_EVENTS_VERSIONS)
        since = CATEGORY_SINCE["identity" if category.startswith("identity") else category]
        return [v for v in (faults.get("versions") or API_VERSIONS) if v >= since]

    @staticmethod
    def _version_error(allowed: list[str], faults: Mapping[str, Any]) -> Reply:
        wording = faults.get("error_wording", "new")
        message = VERSION_ERROR_OLD if wording == "old" else VERSION_ERROR_NEW
        if wording == "no_list":
            return Reply.error(400, message)
        return Reply.error(400, message, **{"newest-versions": sorted(allowed, reverse=True)[:3]})

    def _instance(self, path: str, version: str, fmt: str | None) -> Reply:
        if fmt not in (None, "json", "text"):
            return Reply.error(400, FORMAT_ERROR)
        node: Any = document_for_version(self.document, version)
        rest = path[len("/metadata/instance"):]
        if rest.endswith("/"):
            rest = rest[:-1]
        for segment in rest.split("/")[1:] if rest else ():
            if isinstance(node, dict) and segment in node:
                node = node[segment]
            elif isinstance(node, list) and segment.isdigit() and str(int(segment)) == segment \
                    and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return Reply.error(404)
        if fmt == "text":
            return Reply(200, text_of(node).encode("utf-8"), TEXT_TYPE)
        if not isinstance(node, (dict, list)):
            return Reply.error(400, LEAF_JSON_ERROR)
        return Reply(200, dump_json(node))

    def _scheduled_events(self, method: str, version: str, body: bytes) -> Reply:
        if method == "GET":
            return Reply.json(200, self.events_document(version))
        try:
            request = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return Reply.error(400, "Bad request. The body is not valid JSON")
        starts = request.get("StartRequests") if isinstance(request, dict) else None
        if not isinstance(starts, list):
            return Reply.error(400, "Bad request. The body needs a StartRequests list")
        if not all(isinstance(item, dict) and isinstance(item.get("EventId"), str) for item in starts):
            return Reply.error(400, "Bad request. Every StartRequests item needs an EventId")
        requested = [item["EventId"] for item in starts]
        started = self.events.start(set(requested))
        return Reply(200, b"", None, log={"start_requests": requested, "started": started})

    def _load_balancer(self, faults: Mapping[str, Any]) -> Reply:
        """The VM's load balancer document, or the 404 IMDS answers for a VM in none."""
        status, message = LOADBALANCER_ERRORS.get(faults.get("loadbalancer", ""), (None, None))
        if status is not None:
            return Reply.error(status, message)
        if self._loadbalancer is None:
            return Reply.error(404, LOADBALANCER_MISSING)
        return Reply.json(200, {"loadbalancer": self._loadbalancer})

    def _attested(self, version: str, query: Mapping[str, str]) -> Reply:
        now = time.time()
        nonce = query.get("nonce")
        if nonce is None:
            nonce = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        elif not (nonce.isascii() and nonce.isalnum() and len(nonce) <= 32):
            return Reply.error(400, "Bad request. The nonce must be at most 32 letters and digits")
        compute = self._compute
        plan = compute.get("plan") if isinstance(compute.get("plan"), dict) else {}
        content = {
            "licenseType": str(compute.get("licenseType", "")),
            "nonce": nonce,
            "plan": {key: str(plan.get(key, "")) for key in ("name", "product", "publisher")},
            "sku": str(compute.get("sku", "")),
            "subscriptionId": str(compute.get("subscriptionId", "")),
            "timeStamp": {"createdOn": time.strftime("%m/%d/%y %H:%M:%S -0000", time.gmtime(now)),
                          "expiresOn": time.strftime("%m/%d/%y %H:%M:%S -0000", time.gmtime(now + 6 * 3600))},
            "vmId": str(compute.get("vmId", "")),
        }
        content = {key: value for key, value in content.items() if ATTESTED_FIELD_SINCE[key] <= version}
        signature = base64.b64encode(pkcs7_envelope(dump_json(content))).decode("ascii")
        return Reply.json(200, {"encoding": "pkcs7", "signature": signature})

    def _token(self, query: Mapping[str, str]) -> Reply:
        def invalid(description: str) -> Reply:
            return Reply.json(400, {"error": "invalid_request", "error_description": description})

        resource = query.get("resource")
        if not resource:
            return invalid("Required query variable 'resource' is missing")
        chosen = [name for name in ("client_id", "object_id", "msi_res_id") if name in query]
        if len(chosen) > 1:
            return invalid("Only one of client_id, object_id and msi_res_id may be given")
        if "bypass_cache" in query and query["bypass_cache"] != "true":
            return invalid("bypass_cache must be true when given")
        identity = self._identity
        if not identity["enabled"] or query.get("client_id", identity["client_id"]) != identity["client_id"] \
                or query.get("object_id", identity["object_id"]) != identity["object_id"]:
            return invalid("Identity not found")
        now = int(time.time())
        lifetime = 86399
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{identity['tenant_id']}/",
                  "iat": now, "nbf": now, "exp": now + lifetime, "oid": identity["object_id"],
                  "appid": identity["client_id"], "tid": identity["tenant_id"],
                  "xms_mirid": str(self._compute.get("resourceId", "")), "emulator": True}
        token = ".".join((_b64url(dump_json({"typ": "JWT", "alg": "none"})), _b64url(dump_json(claims)), ""))
        body = {"access_token": token, "client_id": identity["client_id"], "expires_in": str(lifetime),
                "expires_on": str(now + lifetime), "ext_expires_in": str(lifetime), "not_before": str(now),
                "resource": resource, "token_type": "Bearer"}
        if "msi_res_id" in query:
            body["msi_res_id"] = query["msi_res_id"]
        if "object_id" in query:
            body["object_id"] = query["object_id"]
        return Reply.json(200, body)
