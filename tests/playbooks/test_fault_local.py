"""A local attacker, odd DMI files, spellings of IMDS's address and proxies, through real ansible-playbook runs.

- Another (unprivileged) user of the machine, made with ``useradd`` for the test, plants
  the rate-limit folder (``<tmp>/imds-azure-<uid>``) before root's play: a folder of their
  own, a symbolic link, a hard link or a FIFO at the window file's predictable path. The
  play gets its facts in time, writes nothing through the plant and puts nothing in a
  folder it does not own. ``<tmp>`` is a sticky world-writable folder of the test (as
  ``/tmp`` is), given to the play as ``TMPDIR``, so that other runs on this machine keep
  their limit.
- A process of the same user holds the window file's lock for ever, or writes lies into it:
  the play ends within ``retry_timeout`` + ``timeout``, with one line that says why.
- ``dmi_path`` a FIFO, ``/dev/zero``, a directory or a huge file; endpoints that spell
  ``169.254.169.254`` otherwise (decimal, octal, hexadecimal, IPv4-mapped IPv6, full-width
  digits): only inside a network namespace the test makes, with the emulator on the real
  address there, and a DMI file that says "not Azure" for the spellings: no request at all.
- Proxy variables with ``no_proxy`` tricks for the live lookup on the controller: the proxy
  (a recording listener) sees nothing.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ansible_collections.imds.azure.tests.playbooks.faults.hosts import NETNS_REASON, can_make_netns, gather_play, play_hosts
from ansible_collections.imds.azure.tests.playbooks.faults.matrix import Trap, profile_document
from ansible_collections.imds.azure.tests.playbooks.faults.report import register

VM_ID = profile_document("linux")["compute"]["vmId"]
T, R = 2.0, 3.0
EPS = 3.0  # parse, normalize, exit on a loaded runner
OVERHEAD = 20.0  # worker, Python and AnsiballZ around the module on a loaded runner
AZURE_TAG = "7783-7084-3265-9085-8269-3286-77\n"

GATHER = gather_play(("endpoint", "timeout", "retry_timeout", "probe_timeout", "dmi_path"), environment=True)

needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("useradd"),
                                reason="a second user needs root and useradd (the attacker is made for the test)")
needs_netns = pytest.mark.skipif(not can_make_netns(), reason=NETNS_REASON)


def facts_of(result: dict) -> dict:
    return {name[len("ansible_"):] if name.startswith("ansible_") else name: value
            for name, value in (result.get("ansible_facts") or {}).items()}


def window_name(endpoint: str) -> str:
    """The window file's name for an endpoint (plugins/module_utils/_ratelimit.py): predictable by design."""
    return f"rate-{hashlib.sha256(endpoint.encode('utf-8')).hexdigest()[:16]}"


def snapshot(path: Path) -> dict:
    """Every entry below ``path``: type, owner, mode, size, content of small regular files."""
    seen = {}
    for item in sorted([path, *path.rglob("*")]):
        info = os.lstat(item)
        content = item.read_bytes() if item.is_file() and not item.is_symlink() and info.st_size < 65536 else None
        seen[str(item.relative_to(path))] = (oct(info.st_mode), info.st_uid, info.st_nlink, info.st_size, content)
    return seen


@pytest.fixture
def attacker():
    """An unprivileged user of this machine, removed after the test: (name, uid, gid)."""
    name = f"imdsatk{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        yield name, entry.pw_uid, entry.pw_gid
    finally:
        subprocess.run(["userdel", "--force", name], check=False, capture_output=True)


@pytest.fixture
def shared_tmp():
    """A folder like /tmp (root's, mode 1777) that this test's plays use as TMPDIR."""
    path = Path("/tmp") / f"imds-faults-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_user(user: tuple[str, int, int], script: str) -> None:
    subprocess.run(["sh", "-euc", script], user=user[1], group=user[2], extra_groups=[], cwd="/", check=True,
                   env={"PATH": "/usr/bin:/bin"}, capture_output=True, timeout=30)


# -- another user plants the rate-limit folder or the window file ----------------------------------

PLANTS = {
    # name: shell run by the attacker in <tmp>, given the window file's name as $W and root's canary as $C
    "their own folder, mode 0700": "mkdir -m 0700 imds-azure-0",
    "their own folder, mode 0777, with a symbolic link to root's file":
        "mkdir -m 0777 imds-azure-0; ln -s \"$C\" imds-azure-0/$W",
    "their own folder, mode 0777, with a FIFO": "mkdir -m 0777 imds-azure-0; mkfifo -m 0666 imds-azure-0/$W",
    "their own folder, with a hard link to a file of theirs": "mkdir -m 0777 imds-azure-0; echo 1:1:x >mine; "
                                                              "chmod 0666 mine; ln mine imds-azure-0/$W",
    "their own folder, with a hard link to root's file": "mkdir -m 0777 imds-azure-0",  # the link: see below
    "a symbolic link for the folder, to a folder of theirs": "mkdir -m 0700 theirs; ln -s theirs imds-azure-0",
    "a symbolic link for the folder, to root's folder": "ln -s \"$D\" imds-azure-0",
}


@needs_root
def test_another_user_plants_the_rate_limit_folder(attacker, shared_tmp, emulator, tmp_path, request):
    """Issue 14, defect 2, played for real: each plant in a TMPDIR of its own, one play for all of them."""
    cases, hostvars, before = {}, {}, {}
    root_dir = tmp_path / "root-only"  # a folder of root's, where a limiter file would be a find for the attacker
    root_dir.mkdir(mode=0o700)
    for number, (label, plant) in enumerate({"nothing planted (the control)": "", **PLANTS}.items()):
        emu = emulator(profile="linux")
        tmp = shared_tmp / f"case{number}"
        tmp.mkdir()
        os.chmod(tmp, 0o1777)
        canary = tmp_path / f"canary{number}"
        canary.write_text("root's file, which no play may touch\n")
        os.chmod(canary, 0o644)
        if plant:
            as_user(attacker, f"cd {tmp}; W={window_name(emu.url)}; C={canary}; D={root_dir}; {plant}")
        if "hard link to root's file" in label:  # as an attacker can where fs.protected_hardlinks is 0
            os.link(canary, tmp / "imds-azure-0" / window_name(emu.url))
        before[label] = (snapshot(tmp) if plant else None, canary.read_bytes(), os.stat(canary).st_mtime_ns)
        cases[label] = (emu, tmp, canary)
        hostvars[f"p{number:02d}"] = {"endpoint": emu.url, "timeout": T, "retry_timeout": R, "env": {"TMPDIR": str(tmp)}}
    run, lines, _log = play_hosts(GATHER, hostvars, tmp_path / "run")
    assert "Traceback" not in run.output
    for number, (label, (emu, tmp, canary)) in enumerate(cases.items()):
        line = lines[f"p{number:02d}"]
        row = {"scenario": f"local user: {label}", "expected": "facts; nothing written through the plant",
               "observed": f"{line['status']}: {line['result'].get('msg', '') or 'facts'}", "seconds": None,
               "task": line["seconds"], "bound": OVERHEAD, "requests": len(emu.requests), "result": "FAIL"}
        register(request.config).add(row)
        assert line["status"] == "ok" and facts_of(line["result"])["azure_vm_id"] == VM_ID, (label, line["result"])
        assert len(emu.requests) == 1 and line["seconds"] <= OVERHEAD, label
        planted, content, mtime = before[label]
        assert canary.read_bytes() == content and os.stat(canary).st_mtime_ns == mtime, label
        assert not list(root_dir.iterdir()), f"{label}: root's play wrote into the folder a link pointed at"
        folder = tmp / "imds-azure-0"
        if planted is None:  # the control: the play did make and use its private folder in TMPDIR
            info = os.lstat(folder)
            assert (info.st_uid, oct(info.st_mode & 0o7777)) == (0, "0o700"), label
            assert (folder / window_name(emu.url)).is_file(), "the window file is where this test plants"
        else:  # nothing of root's appeared in the attacker's folder, nothing there changed
            assert snapshot(tmp) == planted, label
        row["result"] = "pass"


# -- the same user: a lock held for ever, lies in the window file ---------------------------------------

def _window(shared_tmp: Path, endpoint: str) -> Path:
    folder = shared_tmp / "imds-azure-0"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / window_name(endpoint)
    path.touch(mode=0o600)
    return path


@needs_root
def test_a_held_lock_and_lies_in_the_window_file_end_in_time(shared_tmp, emulator, tmp_path, request):
    """Another process of the same user holds the lock for ever, or fills the window with places held for an
    hour, or with garbage: each play ends within retry_timeout + timeout and says why in one line."""
    now = time.monotonic()
    lies = {
        "the lock held for ever": (None, False, ("held by another process until the deadline", "remove that file")),
        "five places held for an hour": (" ".join(f"{now:.6f}:{now + 3600:.6f}:liar{n}" for n in range(5)),
                                         False, ("no place in IMDS's limit of 5 requests per second",)),
        "places from the future and the distant past": (" ".join(
            [f"{now + 1e6:.6f}:0.000000:f{n}" for n in range(5)] + [f"{now - 1e6:.6f}:0.000000:p{n}" for n in range(5)]),
            True, ()),
        "garbage, NaN, infinities and 1 MiB": ("nan:nan:x inf:inf:y -inf:1e308:z \u00b2:\u00b3:w " + "9" * (1 << 20),
                                               True, ()),
    }
    holders, hostvars, emulators = [], {}, {}
    try:
        for number, (label, (content, ok, words)) in enumerate(lies.items()):
            emu = emulator(profile="linux")
            tmp = shared_tmp / f"case{number}"
            tmp.mkdir()
            path = _window(tmp, emu.url)
            if content is None:
                holder = open(path, "rb")  # noqa: SIM115  # pylint: disable=consider-using-with  # held until the test ends
                fcntl.flock(holder, fcntl.LOCK_EX)
                holders.append(holder)
            else:
                path.write_text(content, encoding="utf-8")
            emulators[label] = (emu, ok, words)
            hostvars[f"l{number:02d}"] = {"endpoint": emu.url, "timeout": T, "retry_timeout": R,
                                          "env": {"TMPDIR": str(tmp)}}
        run, lines, _log = play_hosts(GATHER, hostvars, tmp_path / "run")
    finally:
        for holder in holders:
            holder.close()
    assert "Traceback" not in run.output
    for number, (label, (emu, ok, words)) in enumerate(emulators.items()):
        line = lines[f"l{number:02d}"]
        msg = str(line["result"].get("msg", ""))
        bound = R + T + EPS + OVERHEAD
        row = {"scenario": f"same user: {label}", "expected": "facts" if ok else "fails in time, says why",
               "observed": f"{line['status']}: {msg or 'facts'}", "seconds": None, "task": line["seconds"],
               "bound": bound, "requests": len(emu.requests), "result": "FAIL"}
        register(request.config).add(row)
        if ok:
            assert line["status"] == "ok", (label, msg)
            assert len(emu.requests) == 1
        else:
            assert line["status"] == "failed" and msg.isprintable(), (label, line["result"])
            for word in words:
                assert word in msg, (label, word, msg)
            assert emu.requests == [], "no request without a place in the limit"
        assert line["seconds"] <= bound, f"{label}: the task took {line['seconds']:.1f} s"
        row["result"] = "pass"


# -- DMI files and spellings of the IMDS address, in a network namespace of our own ----------------------

SPELLINGS = ["http://169.254.169.254", "http://169.254.169.254:80/", "http://2852039166", "http://0251.0376.0251.0376",
             "http://0xa9fea9fe", "http://169.254.43518", "http://[::ffff:169.254.169.254]",
             "http://[::ffff:a9fe:a9fe]:80", "HTTP://169.254.169.254:080"]


@needs_netns
def test_dmi_files_and_spellings_of_the_imds_address(tmp_path, request):
    """In a namespace where 169.254.169.254:80 is the emulator: the DMI file decides, whatever its kind, and no
    spelling of the address is taken for an explicit endpoint (which would query IMDS off Azure)."""
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "not-azure").write_text("Default string\n")
    (dmi / "azure").write_text(AZURE_TAG)
    os.mkfifo(dmi / "fifo")
    with open(dmi / "huge", "wb") as handle:  # 1 GiB, sparse
        handle.truncate(1 << 30)
    (dmi / "escapes").write_text("\u001b[2J\nok: forged\n")
    os.symlink("/dev/zero", dmi / "link-to-zero")
    cases = {
        # label: (options, expected detected, words of the detection reason, requests expected)
        **{f"DMI {name}": ({"dmi_path": str(path)}, detected, words, requests) for name, path, detected, words, requests in (
            ("a FIFO", dmi / "fifo", True, ("not a regular file", "answered"), 1),
            ("/dev/zero", "/dev/zero", True, ("not a regular file", "answered"), 1),
            ("a symbolic link to /dev/zero", dmi / "link-to-zero", True, ("not a regular file",), 1),
            ("a directory", dmi, True, ("not a regular file",), 1),
            ("a 1 GiB file", dmi / "huge", False, ("not Azure's",), 0),
            ("with escapes and a line break", dmi / "escapes", False, ("x1b[2J", "nok: forged", "not Azure's"), 0),
            ("missing", dmi / "missing", True, ("could not be read",), 1),
        )},
        **{f"endpoint {spelling}, DMI says not Azure": ({"endpoint": spelling, "dmi_path": str(dmi / "not-azure")},
                                                        False, ("not Azure's",), 0) for spelling in SPELLINGS},
    }
    hostvars = {f"d{n:02d}": {"timeout": T, "retry_timeout": R, "probe_timeout": T, **options}
                for n, (options, *_rest) in enumerate(cases.values())}
    started = time.monotonic()
    run, lines, log = play_hosts(GATHER, hostvars, tmp_path / "run", netns_imds={"profile": "linux"})
    assert "Traceback" not in run.output and "\x1b" not in run.output, run.output[-3000:]
    for number, (label, (_options, detected, words, requests)) in enumerate(cases.items()):
        line = lines[f"d{number:02d}"]
        facts = facts_of(line["result"])
        reason = str(facts.get("azure_detection_reason", ""))
        row = {"scenario": f"namespace: {label}", "expected": "detected" if detected else "not Azure, no request",
               "observed": f"{line['status']}: detected {facts.get('azure_detected')}; {reason}", "seconds": None,
               "task": line["seconds"], "bound": OVERHEAD + T, "requests": requests, "result": "FAIL"}
        register(request.config).add(row)
        assert line["status"] == "ok", (label, line["result"])
        assert facts["azure_detected"] is detected, (label, reason)
        assert reason.isprintable(), repr(reason)
        for word in words:
            assert word in reason, (label, word, reason)
        if detected:
            assert facts["azure_vm_id"] == VM_ID
        assert line["seconds"] <= OVERHEAD + T, f"{label}: {line['seconds']:.1f} s"
        row["result"] = "pass"
    # the spellings made no request at all; each DMI file that could not tell made one (the probe)
    assert len(log) == sum(requests for *_rest, requests in cases.values()), [r["path"] for r in log]
    assert time.monotonic() - started < 600


@needs_netns
def test_a_non_ascii_spelling_is_refused_before_any_request(tmp_path):
    """Full-width digits resolve to 169.254.169.254 through IDNA: before the endpoint check refused them,
    the module took them for an explicit endpoint and queried IMDS although the DMI file said "not Azure"."""
    dmi = tmp_path / "not-azure"
    dmi.write_text("Default string\n")
    spellings = {"full-width digits": "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",
                 "ideographic full stops": "http://169\u3002254\u3002169\u3002254"}
    hostvars = {f"u{n}": {"endpoint": spelling, "dmi_path": str(dmi), "timeout": T, "retry_timeout": R}
                for n, spelling in enumerate(spellings.values())}
    run, lines, log = play_hosts(GATHER, hostvars, tmp_path / "run", netns_imds={"profile": "linux"})
    assert log == [], "a spelling of the IMDS address was queried although the DMI file says not Azure"
    for name in hostvars:
        result = lines[name]["result"]
        assert lines[name]["status"] == "failed" and "not plain ASCII" in result["msg"], result
        assert result["msg"].isprintable()


# -- proxies for the live lookup on the controller, with no_proxy tricks ---------------------------------

LOOKUP = """
- name: The live lookup under proxy variables
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ask IMDS live
      ansible.builtin.copy:
        content: "{{ lookup('imds.azure.metadata', 'compute/vmId', source='live', cache_ttl=0, endpoint=endpoint) }}"
        dest: "{{ out_dir }}/vm_id"
        mode: "0600"
"""


@pytest.mark.parametrize("proxies", [
    {"http_proxy": "{trap}", "no_proxy": "localhost"},
    {"HTTP_PROXY": "{trap}", "NO_PROXY": "127.0.0.1:1"},
    {"all_proxy": "{trap}", "ALL_PROXY": "{trap}", "no_proxy": ""},
    {"http_proxy": "{trap}", "REQUEST_METHOD": "GET", "no_proxy": ".example.com"},
], ids=["no_proxy localhost", "NO_PROXY another port", "all_proxy", "httpoxy"])
def test_the_live_lookup_never_uses_a_proxy(emulator, playbook, proxies):
    emu = emulator(profile="linux")
    trap = Trap("127.0.0.2")
    try:
        env = {name: value.replace("{trap}", trap.url) for name, value in proxies.items()}
        run = playbook(LOOKUP, extra_vars={"endpoint": emu.url}, env=env).check()
    finally:
        trap.stop()
    assert (run.out_dir / "vm_id").read_text() == VM_ID
    assert trap.contacts == [] and len(emu.requests) == 1
    assert all("x-forwarded-for" not in r["headers"] and "via" not in r["headers"] for r in emu.requests)
