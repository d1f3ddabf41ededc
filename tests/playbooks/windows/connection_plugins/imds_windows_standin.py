# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A test-only connection plugin that plays a Windows host, so that real ansible-playbook runs take the Windows path.

No PowerShell runs on our machines. This plugin has a PowerShell shell, so ansible-core
treats the host as Windows: it looks for ``.ps1`` modules first, pipelines them, and
sends each one as the exec-wrapper payload it builds for Windows (bootstrap input and
manifest on ansible-core 2.19 and later, exec wrapper and manifest before). The plugin
unpacks that payload, finds which module it carries, and answers as that module would:

- ``ansible.windows.win_uri``: the request is made, against the emulator on loopback, as
  win_uri.ps1 and WebRequest.psm1 of ansible.windows 3.3.0 make it on .NET Framework 4.x:
  Ansible.Basic's option checks (names, aliases, types), ``HttpWebRequest.Timeout`` from
  ``url_timeout`` bounding everything up to the headers and ``ReadWriteTimeout`` (300 s)
  each read of the body, no redirect with ``follow_redirects: none``, the system (IE)
  proxy unless ``use_proxy: false``, ``Expect: 100-continue`` before a body, every
  status read with its body, the result's keys (response properties and headers
  snake_cased, ``content``, ``json`` for JSON content types), the failure for a status
  outside ``status_code`` and .NET's messages for connection errors and timeouts.
- ``ansible.windows.setup`` (where ``setup`` goes on Windows): the few facts a play
  needs to tell a Windows host (``os_family``...), clearly not the real module.

Anything else fails with a message that names what was asked. URLs other than loopback
addresses are refused: tests never leave the machine. Each win_uri run is appended as a
JSON line to the file named by E(IMDS_STANDIN_LOG), when set.
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: imds_windows_standin
short_description: Test stand-in for a Windows host that plays ansible.windows.win_uri
description:
  - Plays a Windows host (PowerShell shell) for the imds.azure tests; answers win_uri and setup as they would.
  - Test helper of the imds.azure collection; not shipped.
options:
  ie_proxy:
    description: The proxy of the host's Internet Explorer settings, which win_uri uses unless O(use_proxy=false).
    type: str
    vars:
      - name: imds_standin_ie_proxy
author:
  - imds.azure maintainers (@imds-azure)
"""

import base64
import ipaddress
import json
import os
import re
import socket
import time
import typing as t
from urllib.parse import urljoin, urlsplit

from ansible.errors import AnsibleError
from ansible.plugins.connection import ConnectionBase

READ_WRITE_TIMEOUT = 300.0  # .NET's HttpWebRequest.ReadWriteTimeout default, per read of the body
EXPECT_100_WAIT = 0.35  # .NET waits this long for "100 Continue" before it sends a body anyway
NEW_DELIMITER = b"\n\0\0\0\0\n"  # ansible-core 2.19+: bootstrap input, then the exec manifest
OLD_DELIMITER = b"\0\0\0\0"  # ansible-core 2.17, 2.18: exec wrapper, then the manifest

# .NET Framework's HttpStatusCode names (what "$($Response.StatusCode)" prints); others print as numbers.
STATUS_NAMES = {
    100: "Continue", 101: "SwitchingProtocols", 200: "OK", 201: "Created", 202: "Accepted",
    203: "NonAuthoritativeInformation", 204: "NoContent", 205: "ResetContent", 206: "PartialContent",
    300: "Ambiguous", 301: "Moved", 302: "Redirect", 303: "RedirectMethod", 304: "NotModified", 305: "UseProxy",
    306: "Unused", 307: "RedirectKeepVerb", 400: "BadRequest", 401: "Unauthorized", 402: "PaymentRequired",
    403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 406: "NotAcceptable",
    407: "ProxyAuthenticationRequired", 408: "RequestTimeout", 409: "Conflict", 410: "Gone", 411: "LengthRequired",
    412: "PreconditionFailed", 413: "RequestEntityTooLarge", 414: "RequestUriTooLong", 415: "UnsupportedMediaType",
    416: "RequestedRangeNotSatisfiable", 417: "ExpectationFailed", 426: "UpgradeRequired",
    500: "InternalServerError", 501: "NotImplemented", 502: "BadGateway", 503: "ServiceUnavailable",
    504: "GatewayTimeout", 505: "HttpVersionNotSupported",
}

# win_uri's spec merged with Get-AnsibleWindowsWebRequestSpec, as Ansible.Basic sees it.
WIN_URI_OPTIONS: dict[str, dict[str, t.Any]] = {
    "url": {"type": "str", "required": True},
    "content_type": {"type": "str"},
    "body": {"type": "raw"},
    "dest": {"type": "path"},
    "creates": {"type": "path"},
    "removes": {"type": "path"},
    "return_content": {"type": "bool", "default": False},
    "status_code": {"type": "list", "elements": "int", "default": [200]},
    "url_timeout": {"type": "int", "default": 30, "aliases": ["timeout"]},
    "url_method": {"type": "str", "default": "GET", "aliases": ["method"]},
    "follow_redirects": {"type": "str", "choices": ["all", "none", "safe"], "default": "safe"},
    "headers": {"type": "dict"},
    "http_agent": {"type": "str", "default": "ansible-httpget"},
    "maximum_redirection": {"type": "int", "default": 50},
    "validate_certs": {"type": "bool", "default": True},
    "client_cert": {"type": "str"},
    "client_cert_password": {"type": "str"},
    "force_basic_auth": {"type": "bool", "default": False},
    "url_username": {"type": "str"},
    "url_password": {"type": "str"},
    "use_default_credential": {"type": "bool", "default": False},
    "use_proxy": {"type": "bool", "default": True},
    "proxy_url": {"type": "str"},
    "proxy_username": {"type": "str"},
    "proxy_password": {"type": "str"},
    "proxy_use_default_credential": {"type": "bool", "default": False},
}
BOOLEANS_TRUE = ("y", "yes", "on", "1", "true", "t", "1.0")
BOOLEANS_FALSE = ("n", "no", "off", "0", "false", "f", "0.0")
JSON_CANDIDATES = re.compile("text|json|javascript", re.I)
# Headers HttpWebRequest sets through properties (the switch in Get-AnsibleWindowsWebRequest).
PROPERTY_HEADERS = {"accept", "connection", "content-length", "content-type", "expect", "date", "host",
                    "if-modified-since", "range", "referer", "transfer-encoding"}


# Ansible.Basic's FromJson (JavaScriptSerializer, RecursionLimit int.MaxValue) recurses once per
# level of the content win_uri parses as JSON: a document nested deep enough overflows the
# stack, and .NET ends the process with this line on stderr (exit code 0xC00000FD).
STACK_OVERFLOW = "Process is terminated due to StackOverflowException."
STACK_OVERFLOW_RC = -1073741571


class StackOverflow(Exception):
    """The PowerShell process would end here."""


class Fail(Exception):
    """$module.FailJson(message): the module's result so far, plus failed and msg."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DotNetError(Exception):
    """An exception .NET would raise; ``call`` is the method PowerShell called (for its wrapper text)."""

    def __init__(self, message: str, call: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.call = call

    def as_seen_by_win_uri(self) -> str:
        if self.call is None:  # caught by Invoke-AnsibleWindowsWebRequest's [WebException] catch, rethrown
            return self.message
        arguments = {"GetRequestStream": 0, "GetResponse": 0, "CopyTo": 1}[self.call]
        return f'Exception calling "{self.call}" with "{arguments}" argument(s): "{self.message}"'


class Connection(ConnectionBase):
    """A Windows host with a PowerShell shell, played in this process."""

    transport = "imds_windows_standin"
    module_implementation_preferences = (".ps1", ".exe", "")
    allow_executable = False
    has_pipelining = True
    allow_extras = False

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.always_pipeline_modules = True
        self.has_native_async = True
        self._shell_type = "powershell"
        super().__init__(*args, **kwargs)

    def _connect(self) -> Connection:
        self._connected = True
        return self

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        if not in_data:
            raise AnsibleError(f"the Windows stand-in runs pipelined modules only, not the command {cmd[:80]!r}")
        path, source, args, extra_actions = unpack_payload(in_data)
        if extra_actions:
            return fail_rc(f"the Windows stand-in does not play {', '.join(extra_actions)} (become, async)")
        module = self._identify(path, source)
        started = time.time()
        if module == "ansible.windows.win_uri":
            proxy = self.get_option("ie_proxy") if self._has_option("ie_proxy") else None
            try:
                result = WinUri(args, proxy).run()
            except StackOverflow:
                self._log(module, args, {"failed": True, "msg": STACK_OVERFLOW}, started)
                return STACK_OVERFLOW_RC, b"", STACK_OVERFLOW.encode("utf-8")
        elif module == "ansible.windows.setup":
            result = setup_facts(args, self._play_context.remote_addr)
        else:
            return fail_rc(f"the Windows stand-in plays ansible.windows.win_uri and ansible.windows.setup, "
                           f"not {path or 'this module'}")
        self._log(module, args, result, started)
        return (1 if result.get("failed") else 0), json.dumps(result).encode("utf-8"), b""

    def put_file(self, in_path: str, out_path: str) -> None:
        raise AnsibleError("the Windows stand-in does not copy files")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        raise AnsibleError("the Windows stand-in does not fetch files")

    def close(self) -> None:
        self._connected = False

    def _has_option(self, name: str) -> bool:
        try:
            self.get_option(name)
        except KeyError:
            return False
        return True

    @staticmethod
    def _identify(path: str | None, source: bytes) -> str | None:
        """Which module the payload carries: by its file (2.19+), else by its exact text."""
        from ansible.plugins.loader import module_loader

        for name in ("ansible.windows.win_uri", "ansible.windows.setup"):
            found = module_loader.find_plugin_with_context(name, mod_type=".ps1")
            if not found.resolved:
                continue
            with open(found.plugin_resolved_path, "rb") as handle:
                text = handle.read()
            if (path and os.path.realpath(path) == os.path.realpath(found.plugin_resolved_path)) \
                    or source.strip() == text.strip():
                return name
        return None

    def _log(self, module: str, args: dict[str, t.Any], result: dict[str, t.Any], started: float) -> None:
        target = os.environ.get("IMDS_STANDIN_LOG")
        if not target:
            return
        codes = args.get("status_code")
        line = {"host": self._play_context.remote_addr, "module": module, "start": started, "end": time.time(),
                "args": {k: v for k, v in args.items() if k != "status_code" and not k.startswith("_ansible_")},
                "check_mode": args.get("_ansible_check_mode"),
                "status_codes": [min(codes), max(codes), len(codes)] if isinstance(codes, list) and codes else codes,
                "status": result.get("status_code"), "failed": bool(result.get("failed")), "msg": result.get("msg")}
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


def fail_rc(message: str) -> tuple[int, bytes, bytes]:
    return 1, json.dumps({"failed": True, "msg": message}).encode("utf-8"), b""


def unpack_payload(data: bytes) -> tuple[str | None, bytes, dict[str, t.Any], list[str]]:
    """(module path, module source, module args, actions other than running the module) from the payload."""
    if NEW_DELIMITER in data:  # ansible-core 2.19 and later
        bootstrap, _delimiter, rest = data.partition(NEW_DELIMITER)
        if json.loads(bootstrap).get("name") != "exec_wrapper":
            raise AnsibleError("the Windows stand-in got a payload that is not for the exec wrapper")
        manifest = json.loads(rest.split(NEW_DELIMITER)[0])
        extra = [a["name"] for a in manifest["actions"] if a["name"] != "module_wrapper.ps1"]
        action = next(a for a in manifest["actions"] if a["name"] == "module_wrapper.ps1")
        script = manifest["scripts"][action["params"]["Script"]]
        args = next(v["Value"] for v in action["params"].get("Variables", []) if v["Name"] == "complex_args")
        return script.get("path"), base64.b64decode(script["script"]), dict(args or {}), extra
    if OLD_DELIMITER in data:  # ansible-core 2.17 and 2.18
        manifest = json.loads(data.partition(OLD_DELIMITER)[2])
        extra = [name for name in manifest["actions"] if name != "module_powershell_wrapper"]
        return None, base64.b64decode(manifest["module_entry"]), dict(manifest.get("module_args") or {}), extra
    raise AnsibleError("the Windows stand-in got a payload it does not know")


# -- Ansible.Basic's option handling --------------------------------------------------------


def dotnet_type(value: t.Any) -> str:
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, int):
        return "System.Int32" if -2**31 <= value < 2**31 else "System.Int64"
    if isinstance(value, float):
        return "System.Double"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, list):
        return "System.Collections.ArrayList"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    return type(value).__name__


def dotnet_str(value: t.Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def convert(value: t.Any, kind: str) -> t.Any:
    if kind in ("str", "path"):
        return dotnet_str(value)
    if kind == "raw":
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = dotnet_str(value).lower().strip()
        if text in BOOLEANS_TRUE or text in BOOLEANS_FALSE:
            return text in BOOLEANS_TRUE
        raise ValueError(f"The value '{text}' is not a valid boolean. Valid booleans include: "
                         f"{', '.join(BOOLEANS_TRUE + BOOLEANS_FALSE)}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and -2**31 <= value < 2**31:
            return value
        text = dotnet_str(value)
        if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
            raise ValueError("Input string was not in a correct format.")
        number = int(text)
        if not -2**31 <= number < 2**31:
            raise ValueError("Value was either too large or too small for an Int32.")
        return number
    if kind == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        if isinstance(value, int) and not isinstance(value, bool):
            return [value]
        raise ValueError(f"{dotnet_type(value)} cannot be converted to a list")
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise ValueError(f"{dotnet_type(value)} cannot be converted to a dict")
    raise ValueError(f"unknown type {kind}")


def validate(args: dict[str, t.Any], options: dict[str, dict[str, t.Any]], name: str) -> dict[str, t.Any]:
    """The params Ansible.Basic.AnsibleModule builds from ``args``, or Fail with its messages."""
    aliases = {alias: option for option, spec in options.items() for alias in spec.get("aliases", [])}
    legal = list(options) + list(aliases)
    unsupported = [key for key in args if not key.startswith("_ansible_")
                   and key.lower() not in (known.lower() for known in legal)]
    if unsupported:
        raise Fail(f"Unsupported parameters for ({name}) module: {', '.join(unsupported)}. "
                   f"Supported parameters include: {', '.join(legal)}")
    params = {key: value for key, value in args.items() if not key.startswith("_ansible_")}
    for alias, option in aliases.items():
        if alias in params:
            params.setdefault(option, params.pop(alias))
    missing = [option for option, spec in options.items() if spec.get("required") and params.get(option) is None]
    if missing:
        raise Fail(f"missing required arguments: {', '.join(missing)}")
    for option, spec in options.items():
        value = params.get(option)
        if value is None:
            params[option] = spec.get("default")
            if params[option] is None:
                continue
            value = params[option]
        try:
            value = convert(value, spec["type"])
            if spec["type"] == "list" and spec.get("elements"):
                value = [convert(item, spec["elements"]) for item in value]
        except ValueError as exc:
            raise Fail(f"argument for {option} is of type {dotnet_type(params[option])} and we were unable to convert "
                       f"to {spec['type']}: {exc}") from None
        choices = spec.get("choices")
        if choices and value not in choices:
            raise Fail(f"value of {option} must be one of: {', '.join(choices)}. Got no match for: {value}")
        params[option] = value
    return params


def snake(name: str) -> str:
    """Convert-StringToSnakeCase of Ansible.ModuleUtils.CamelConversion."""
    plural = re.search("[A-Z]{3,}s", name)
    if plural:
        replaced = name.replace(plural.group(0), "_" + plural.group(0).lower())
        if replaced.startswith("_") and not name.startswith("_"):
            replaced = replaced[1:]
        name = replaced
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


# -- win_uri ----------------------------------------------------------------------------------


class Response(t.NamedTuple):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    url: str
    method: str


class WinUri:
    """win_uri.ps1 with Get-/Invoke-AnsibleWindowsWebRequest, on .NET Framework's HttpWebRequest."""

    def __init__(self, args: dict[str, t.Any], ie_proxy: str | None) -> None:
        self.args = args
        self.ie_proxy = ie_proxy
        self.result: dict[str, t.Any] = {"changed": False}

    def run(self) -> dict[str, t.Any]:
        try:
            self._run()
        except Fail as exc:
            self.result.update(failed=True, msg=exc.message)
        return self.result

    def _run(self) -> None:
        params = validate(self.args, WIN_URI_OPTIONS, "win_uri")
        self.result["invocation"] = {"module_args": params}
        method = params["url_method"].upper()
        self.result.update(elapsed=0, url=params["url"])
        if not re.fullmatch("[A-Z]+", method):
            raise Fail("Parameter 'method' needs to be a single word in uppercase, like GET or POST.")
        body = params["body"]
        if body is not None and not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":")) if isinstance(body, (dict, list)) else dotnet_str(body)
        data = body.encode("utf-8") if body is not None else None
        start = time.monotonic()
        try:
            response = self._send(params, method, data)
        except DotNetError as exc:
            self.result["status_code"] = None
            raise Fail(f"Unhandled exception occurred when sending web request. Exception: {exc.as_seen_by_win_uri()}") from None
        finally:
            self.result["elapsed"] = time.monotonic() - start
        self.result["msg"] = response.reason
        self.result["status_code"] = response.status
        self._response_properties(response)
        for name, value in response.headers:
            self.result[snake(name.replace("-", ""))] = value
        if params["return_content"]:
            self.result["content"] = response.body.decode("utf-8", "replace")
            if JSON_CANDIDATES.search(self.result.get("content_type") or ""):
                try:
                    parsed = json.loads(self.result["content"])
                except ValueError:
                    parsed = None
                except RecursionError:
                    raise StackOverflow() from None
                if parsed:
                    self.result["json"] = parsed
        if response.status not in params["status_code"]:
            shown = " ".join(str(code) for code in params["status_code"])
            raise Fail(f"Status code of request '{response.status}' is not in list of valid status codes {shown} : "
                       f"{STATUS_NAMES.get(response.status, response.status)}'.")

    def _response_properties(self, response: Response) -> None:
        """HttpWebResponse's properties, as the module's loop over $Response.PSObject.Properties sets them."""
        headers = {name.lower(): value for name, value in response.headers}
        content_type = headers.get("content-type", "")
        charset = re.search(r"charset=([^;]+)", content_type)
        self.result.update({
            "character_set": charset.group(1).strip('" ') if charset else "",
            "content_encoding": headers.get("content-encoding", ""),
            "content_length": int(headers["content-length"]) if headers.get("content-length", "").isdigit() else -1,
            "content_type": content_type,
            "cookies": [],
            "headers": [name for name, _value in response.headers],
            "is_from_cache": False,
            "is_mutually_authenticated": False,
            "last_modified": headers.get("last-modified") or time.strftime("%Y-%m-%dT%H:%M:%S"),
            "method": response.method,
            "protocol_version": {"Major": 1, "Minor": 1, "Build": -1, "Revision": -1},
            "response_uri": response.url,
            "server": headers.get("server", ""),
            "status_code": response.status,
            "status_description": response.reason,
            "supports_headers": True,
        })

    # -- HttpWebRequest --------------------------------------------------------------------

    def _send(self, params: dict[str, t.Any], method: str, data: bytes | None) -> Response:
        url = params["url"]
        follow = params["follow_redirects"] == "all" or (params["follow_redirects"] == "safe" and method in ("GET", "HEAD"))
        follow = follow and params["maximum_redirection"] != 0
        proxy = None if not params["use_proxy"] else (params["proxy_url"] or self.ie_proxy)
        headers = [("User-Agent", params["http_agent"])]
        for name, value in (params["headers"] or {}).items():
            if name.lower() == "user-agent":
                if params["http_agent"] == "ansible-httpget":
                    headers[0] = ("User-Agent", str(value))
                continue
            headers.append((name, str(value)))
        if params["content_type"] is not None:
            headers = [(n, v) for n, v in headers if n.lower() != "content-type"] + [("Content-Type",
                                                                                      params["content_type"])]
        deadline = time.monotonic() + params["url_timeout"]
        for _hop in range(params["maximum_redirection"] + 1):
            response = exchange(url, method, headers, data, deadline, proxy)
            location = next((v for n, v in response.headers if n.lower() == "location"), None)
            if not (follow and response.status in (301, 302, 303, 307, 308) and location):
                return response
            url = urljoin(url, location)
            if response.status in (301, 302, 303) and method == "POST":
                method, data = "GET", None
        return response


def exchange(url: str, method: str, headers: list[tuple[str, str]], data: bytes | None, deadline: float,
             proxy: str | None) -> Response:
    """One request and its response as .NET Framework's HttpWebRequest makes it (no keep-alive reuse)."""
    if urlsplit(url).scheme != "http":
        raise DotNetError("The Windows stand-in speaks plain HTTP only")
    host, port = loopback_only(proxy or url)
    target = url if proxy else (urlsplit(url).path or "/") + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
    call = "GetRequestStream" if data is not None else None
    sock = connect(host, port, deadline, call)
    try:
        lines = [f"{method} {target} HTTP/1.1"]
        names = {name.lower() for name, _value in headers}
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append(f"Host: {urlsplit(url).netloc}")
        if data is not None:
            lines += [f"Content-Length: {len(data)}", "Expect: 100-continue"]
        if "connection" not in names:
            lines.append("Connection: Keep-Alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        reader = Reader(sock)
        send(sock, head, deadline, call)
        early = None
        if data is not None:
            early = reader.interim(min(deadline, time.monotonic() + EXPECT_100_WAIT))
            if early is None:
                send(sock, data, deadline, call)
        status, reason, response_headers = early or reader.head(deadline)
        body = b"" if method == "HEAD" or status in (204, 304) else reader.body(response_headers)
        return Response(status, reason, response_headers, body, url, method)
    finally:
        sock.close()


def loopback_only(url: str) -> tuple[str, int]:
    """(host, port) of ``url`` when it is a loopback address; else Fail, before any socket exists."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise Fail(f"the Windows stand-in only reaches loopback addresses, and refused {url}")
    return host, parts.port or 80


def connect(host: str, port: int, deadline: float, call: str | None) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except OSError:
        raise DotNetError(f"The remote name could not be resolved: '{host}'", call) from None
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            sock.connect(address)
            return sock
        except socket.timeout:
            sock.close()
            raise DotNetError("The operation has timed out", call) from None
        except OSError:
            sock.close()
    raise DotNetError("Unable to connect to the remote server", call)


def send(sock: socket.socket, data: bytes, deadline: float, call: str | None) -> None:
    sock.settimeout(max(0.001, deadline - time.monotonic()))
    try:
        sock.sendall(data)
    except socket.timeout:
        raise DotNetError("The operation has timed out", call) from None
    except OSError:
        raise DotNetError("The underlying connection was closed: An unexpected error occurred on a send.",
                          call) from None


class Reader:
    """Reads the response the way .NET does: up to the headers by the deadline, then the body read by read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _recv(self, timeout: float, phase: str) -> bytes:
        self.sock.settimeout(max(0.001, timeout))
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            if phase == "body":
                raise DotNetError("Unable to read data from the transport connection: A connection attempt failed "
                                  "because the connected party did not properly respond after a period of time, or "
                                  "established connection failed because connected host has failed to respond.",
                                  "CopyTo") from None
            raise DotNetError("The operation has timed out") from None
        except OSError:
            if phase == "body":
                raise DotNetError("Unable to read data from the transport connection: An existing connection was "
                                  "forcibly closed by the remote host.", "CopyTo") from None
            raise DotNetError("The underlying connection was closed: An unexpected error occurred on a receive.") \
                from None

    def interim(self, until: float) -> tuple[int, str, list[tuple[str, str]]] | None:
        """After ``Expect: 100-continue``: None once "100 Continue" came or the wait ended; else the final answer."""
        while b"\r\n\r\n" not in self.buffer:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                raise DotNetError("The underlying connection was closed: An unexpected error occurred on a receive.") \
                    from None
            if not chunk:
                raise DotNetError("The underlying connection was closed: The connection was closed unexpectedly.")
            self.buffer += chunk
        status, reason, headers = self._parse_head()
        return None if status == 100 else (status, reason, headers)

    def head(self, deadline: float) -> tuple[int, str, list[tuple[str, str]]]:
        while True:
            while b"\r\n\r\n" not in self.buffer:
                if len(self.buffer) > 1 << 20:
                    raise DotNetError("The server committed a protocol violation. Section=ResponseHeader "
                                      "Detail=Header name is invalid")
                chunk = self._recv(deadline - time.monotonic(), "head")
                if not chunk:
                    raise DotNetError("The underlying connection was closed: The connection was closed unexpectedly.")
                self.buffer += chunk
            status, reason, headers = self._parse_head()
            if not 100 <= status < 200:
                return status, reason, headers

    def _parse_head(self) -> tuple[int, str, list[tuple[str, str]]]:
        head, _end, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        self.buffer = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: (.*))?", lines[0])
        if not match:
            raise DotNetError("The server committed a protocol violation. Section=ResponseStatusLine")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or "\n" in line or "\r" in line:
                raise DotNetError("The server committed a protocol violation. Section=ResponseHeader "
                                  "Detail=CR must be followed by LF")
            for index, (known, before) in enumerate(headers):  # WebHeaderCollection joins repeated headers
                if known.lower() == name.lower():
                    headers[index] = (known, f"{before},{value.strip()}")
                    break
            else:
                headers.append((name, value.strip()))
        return int(match.group(1)), match.group(2) or "", headers

    def body(self, headers: list[tuple[str, str]]) -> bytes:
        fields = {name.lower(): value for name, value in headers}
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return self._chunked()
        length = fields.get("content-length")
        if length is not None and length.strip().isdigit():
            wanted = int(length)
            while len(self.buffer) < wanted:
                chunk = self._recv(READ_WRITE_TIMEOUT, "body")
                if not chunk:
                    raise DotNetError("Unable to read data from the transport connection: The connection was closed.",
                                      "CopyTo")
                self.buffer += chunk
            return bytes(self.buffer[:wanted])
        while True:  # no framing: the body ends with the connection
            chunk = self._recv(READ_WRITE_TIMEOUT, "body")
            if not chunk:
                return bytes(self.buffer)
            self.buffer += chunk

    def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self._recv(READ_WRITE_TIMEOUT, "body")
                if not chunk:
                    raise DotNetError("Unable to read data from the transport connection: The connection was "
                                      "closed.", "CopyTo")
                self.buffer += chunk
            line, _crlf, rest = bytes(self.buffer).partition(b"\r\n")
            self.buffer = bytearray(rest)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise DotNetError("The server committed a protocol violation. Section=ResponseBody "
                                  "Detail=Response chunk format is invalid", "CopyTo") from None
            if size == 0:
                return bytes(body)
            while len(self.buffer) < size + 2:
                chunk = self._recv(READ_WRITE_TIMEOUT, "body")
                if not chunk:
                    raise DotNetError("Unable to read data from the transport connection: The connection was "
                                      "closed.", "CopyTo")
                self.buffer += chunk
            body += self.buffer[:size]
            del self.buffer[:size + 2]


# -- setup ------------------------------------------------------------------------------------


def setup_facts(args: dict[str, t.Any], host: str) -> dict[str, t.Any]:
    """Not ansible.windows.setup: the facts a play reads to tell a Windows host, and a marker that says so."""
    subset = args.get("gather_subset") or ["all"]
    facts = {
        "ansible_os_family": "Windows",
        "ansible_system": "Win32NT",
        "ansible_distribution": "Microsoft Windows Server 2022 Datacenter",
        "ansible_os_name": "Microsoft Windows Server 2022 Datacenter",
        "ansible_hostname": str(host).split(".", maxsplit=1)[0].upper(),
        "ansible_system_vendor": "Microsoft Corporation",
        "ansible_product_name": "Virtual Machine",
        "gather_subset": subset if isinstance(subset, list) else [subset],
        "module_setup": True,
        "imds_windows_standin": True,
    }
    return {"changed": False, "ansible_facts": facts}
