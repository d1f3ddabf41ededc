# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# This file is private to imds.azure; it is not a public API.
"""The command line: ``python3 <collection>/tools/imds_emulator [options] [-- COMMAND...]``.

Every bad option, profile, fault, timeline or fleet is one line on standard error,
``imds-emulator: error: ...``, and exit status 2; an address it cannot listen on is
such a line and exit status 1. It always stops by itself after ``--lifetime``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from ._checks import MAX_SECONDS, EmulatorError
from ._documents import available_profiles
from ._emulator import Emulator
from ._faults import FAULT_NAMES
from ._fleet import Fleet, check_vms, load_fleet

TOOL_DIR = Path(__file__).resolve().parent
IMDS_ADDRESS = "169.254.169.254"
NETNS_INSIDE = "--netns-inside"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"imds-emulator: error: {message}\n")


def _seconds(text: str, *, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    if positive and value == 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS:.0f} seconds: {text!r}")
    return value


def _non_negative(text: str) -> float:
    return _seconds(text)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return value


def _vm(text: str) -> dict:
    name, sep, port = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, not {text!r}")
    return {"name": name, "port": _port(port)}


def parser() -> _Parser:
    parser = _Parser(
        prog="imds_emulator", description="Serve an emulated Azure Instance Metadata Service (IMDS).",
        epilog="Run a command in a network namespace where the emulator is 169.254.169.254:80 "
               "(root): imds_emulator --netns -- ansible-playbook site.yml")
    parser.add_argument("--bind", help="address to listen on (default 127.0.0.1; 169.254.169.254 with --netns)")
    parser.add_argument("--port", type=_port, help="port; 0 picks a free one (default 0; 80 with --netns)")
    parser.add_argument("--profile", default="linux", help=f"profile name ({', '.join(available_profiles())})")
    parser.add_argument("--profile-file", help="a JSON file with a full /metadata/instance document")
    parser.add_argument("--list-profiles", action="store_true", help="print the profile names and exit")
    parser.add_argument("--faults",
                        help=f"fault switches as a JSON object ({', '.join(FAULT_NAMES)})")
    parser.add_argument("--latency", type=_non_negative, default=0.0, help="seconds added to every answer")
    parser.add_argument("--log", help="append one JSON line per IMDS request to this file")
    parser.add_argument("--port-file", help="write the port number to this file once listening "
                                            "(a fleet: one 'NAME PORT' line per VM)")
    parser.add_argument("--pid-file", help="write the process id to this file once listening; removed at exit")
    parser.add_argument("--lifetime", type=_non_negative, default=3600.0,
                        help="exit after this many seconds (default 3600)")
    parser.add_argument("--timeline", help="a JSON file of scheduled events to play (see the docs)")
    parser.add_argument("--vm", type=_vm, action="append", metavar="NAME=PORT",
                        help="fleet mode: serve a VM of that name on that port (repeat it)")
    parser.add_argument("--fleet", help="fleet mode: a JSON file with the VMs to serve")
    parser.add_argument("--netns", action="store_true",
                        help="run COMMAND (after --) in a new network namespace where the emulator serves "
                             "169.254.169.254:80; needs root; everything is gone when COMMAND ends")
    parser.add_argument("--netns-timeout", type=lambda text: _seconds(text, positive=True), default=600.0,
                        help="stop COMMAND after this many seconds (default 600)")
    parser.add_argument("--background", action="store_true",
                        help="start in a process of its own and return once it answers (needs --pid-file)")
    parser.add_argument("--status", action="store_true",
                        help="say whether the emulator of --pid-file runs (exit 0) or not (exit 3)")
    parser.add_argument("--stop", action="store_true",
                        help="stop the emulator of --pid-file (not running is fine)")
    parser.add_argument(NETNS_INSIDE, action="store_true", help=argparse.SUPPRESS)
    return parser


def _write_atomically(path: str, text: str) -> None:
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(target)


def _build(args: argparse.Namespace, parse: _Parser) -> Emulator | Fleet:
    """The emulator (or fleet) the options describe; a bad option ends here with exit status 2."""
    host = args.bind or "127.0.0.1"
    faults = None
    if args.faults is not None:
        try:
            faults = json.loads(args.faults)
        except (ValueError, RecursionError) as exc:
            parse.error(f"--faults is not valid JSON: {str(exc)[:200]}")
    try:
        if not (args.vm or args.fleet):
            return Emulator(profile=args.profile, host=host, port=args.port or 0, faults=faults,
                            latency=args.latency, log_path=args.log, profile_file=args.profile_file,
                            timeline=args.timeline)
        if args.vm and args.fleet:
            parse.error("--vm and --fleet do not go together; put every VM in the fleet file")
        if args.port is not None:
            parse.error("--port does not apply to a fleet: give each VM its port (--vm NAME=PORT)")
        if args.profile_file:
            parse.error("--profile-file does not apply to a fleet: give each VM its profile_file in --fleet")
        if args.fleet:
            loaded = load_fleet(args.fleet)
            vms, timeline = loaded["vms"], loaded["timeline"]
        else:
            vms, timeline = check_vms(args.vm, "--vm"), None
        fleet = Fleet(vms, host=host, profile=args.profile, faults=faults, latency=args.latency,
                      log_path=args.log, timeline=timeline)
        if args.timeline:
            fleet.load_timeline(args.timeline)
        return fleet
    except EmulatorError as exc:
        parse.error(str(exc))


def _run(server: Emulator | Fleet, args: argparse.Namespace, stopping: threading.Event,
         announce: bool = True) -> int:
    """Serve until ``stopping`` is set or the lifetime ends; the port and pid files once listening."""
    members = [server] if isinstance(server, Emulator) else list(server)
    try:
        server.start()
    except EmulatorError as exc:  # the log file
        sys.stderr.write(f"imds-emulator: error: {exc}\n")
        return 2
    except OSError as exc:
        where = f"{args.bind or '127.0.0.1'}:{args.port or 0}" if isinstance(server, Emulator) \
            else f"{args.bind or '127.0.0.1'} (the ports {', '.join(str(emu.port) for emu in members)})"
        sys.stderr.write(f"imds-emulator: error: cannot listen on {where}: {exc.strerror or exc}\n")
        return 1
    try:
        if args.port_file:
            _write_atomically(args.port_file, f"{server.port}\n" if isinstance(server, Emulator)
                              else "".join(f"{emu.fleet_name} {emu.port}\n" for emu in members))
        if announce:
            for emu in members:
                suffix = f" for {emu.fleet_name}" if emu.fleet_name else ""
                sys.stdout.write(f"imds-emulator listening on {emu.url}{suffix}\n")
            sys.stdout.flush()
        if args.pid_file:  # last: a pid file says the emulator answers (--background waits for it)
            _write_atomically(args.pid_file, f"{os.getpid()}\n")
        deadline = time.monotonic() + args.lifetime
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            stopping.wait(min(left, 1.0))
    except OSError as exc:
        sys.stderr.write(f"imds-emulator: error: {exc}\n")
        return 1
    finally:
        server.stop()
        if args.pid_file:
            _remove_pid_file(args.pid_file)
    return 0


def _pid_of(path: str) -> int | None:
    """The process of a pid file if it is alive and an emulator (on Linux: its command line says so)."""
    try:
        pid = int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        if cmdline.exists() and b"imds_emulator" not in cmdline.read_bytes():
            return None  # the pid was reused by another program
    except OSError:
        pass
    return pid


def _status(args: argparse.Namespace) -> int:
    pid = _pid_of(args.pid_file)
    if pid is None:
        sys.stdout.write("imds-emulator not running\n")
        return 3
    sys.stdout.write(f"imds-emulator running (pid {pid})\n")
    return 0


def _stop(args: argparse.Namespace) -> int:
    """Stop the emulator of a pid file (SIGTERM, then SIGKILL after 10 s); not running is fine."""
    pid = _pid_of(args.pid_file)
    if pid is None:
        try:
            Path(args.pid_file).unlink()
        except OSError:
            pass
        sys.stdout.write("imds-emulator not running\n")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pid_of(args.pid_file) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_of(args.pid_file) == pid:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    try:
        Path(args.pid_file).unlink()
    except OSError:
        pass
    sys.stdout.write(f"imds-emulator stopped (pid {pid})\n")
    return 0


def _background(args: argparse.Namespace, argv: list[str]) -> int:
    """Start the emulator as a process of its own and return once it answers (or with its error)."""
    import tempfile

    pid = _pid_of(args.pid_file)
    if pid is not None:
        sys.stderr.write(f"imds-emulator: error: an emulator already runs with --pid-file {args.pid_file} "
                         f"(pid {pid}); stop it first with --stop\n")
        return 2
    try:
        Path(args.pid_file).unlink()
    except OSError:
        pass
    child_argv = [arg for arg in argv if arg != "--background"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, str(TOOL_DIR), *child_argv],  # pylint: disable=consider-using-with
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 30
        while _pid_of(args.pid_file) != child.pid:
            if child.poll() is not None:
                err.seek(0)
                sys.stderr.write(err.read().decode("utf-8", "replace"))
                return child.returncode or 1
            if time.monotonic() > deadline:
                child.kill()
                sys.stderr.write("imds-emulator: error: the emulator did not answer within 30 seconds; stopped it\n")
                return 1
            time.sleep(0.02)
        out.seek(0)
        sys.stdout.write(out.read().decode("utf-8", "replace"))
    return 0


def _remove_pid_file(path: str) -> None:
    try:
        if Path(path).read_text().strip() == str(os.getpid()):
            Path(path).unlink()
    except OSError:
        pass


def _check_netns_tools(parse: _Parser) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        parse.error("--netns needs root (it creates a network namespace); run it as root, e.g. with sudo")
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        parse.error(f"--netns needs {' and '.join(missing)} (util-linux, iproute2); install them")


def _netns_outside(args: argparse.Namespace, argv: list[str], stopping: threading.Event) -> int:
    """Re-run this tool under ``unshare --net``: a namespace that lives as long as the command."""
    split = argv.index("--") if "--" in argv else len(argv)
    inner = [arg for arg in argv[:split] if arg != "--netns"] + [NETNS_INSIDE] + argv[split:]
    process = subprocess.Popen([shutil.which("unshare") or "unshare", "--net", "--", sys.executable,  # pylint: disable=consider-using-with
                                str(TOOL_DIR), *inner])
    if _supervise(process, args.netns_timeout + 15, stopping) or stopping.is_set():
        return process.returncode
    return 124


def _supervise(process: subprocess.Popen, seconds: float, stopping: threading.Event) -> bool:
    """Wait for ``process`` at most ``seconds`` or until ``stopping``; then end it (SIGTERM, SIGKILL after
    10 s). True when it ended by itself."""
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        if stopping.is_set() or time.monotonic() > deadline:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            return False
        stopping.wait(0.1)
    return True


def _netns_inside(args: argparse.Namespace, parse: _Parser, stopping: threading.Event) -> int:
    """Inside the new namespace: 169.254.169.254 on loopback, the emulator, then the command."""
    for command in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            sys.stderr.write(f"imds-emulator: error: {' '.join(command)} failed: {done.stderr.strip()[:300]}\n")
            return 1
    args.bind = args.bind or IMDS_ADDRESS
    args.port = 80 if args.port is None else args.port
    args.lifetime = args.netns_timeout + 10
    emulator = _build(args, parse)
    done_serving = threading.Event()
    server = threading.Thread(target=_run, args=(emulator, args, done_serving, False), name="imds-emulator-netns",
                              daemon=True)
    server.start()
    if not _wait_until_listening(args.bind, args.port, server):
        done_serving.set()
        server.join(15)
        return 1
    try:
        command = subprocess.Popen(args.command)  # pylint: disable=consider-using-with
        if not _supervise(command, args.netns_timeout, stopping) and not stopping.is_set():
            sys.stderr.write(f"imds-emulator: error: the command did not finish within "
                             f"{args.netns_timeout:g} seconds (--netns-timeout); stopped it\n")
            return 124
        return command.returncode
    except OSError as exc:
        sys.stderr.write(f"imds-emulator: error: cannot run {args.command[0]}: {exc.strerror or exc}\n")
        return 127
    finally:
        done_serving.set()
        server.join(15)


def _wait_until_listening(host: str, port: int, server: threading.Thread) -> bool:
    import socket

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.is_alive():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parse = parser()
    split = argv.index("--") if "--" in argv else len(argv)
    args = parse.parse_args(argv[:split])
    args.command = argv[split + 1:]
    if args.list_profiles:
        sys.stdout.write("".join(f"{name}\n" for name in available_profiles()))
        return 0
    if args.lifetime == 0:
        parse.error("--lifetime must be positive")
    if (args.netns or args.netns_inside) != bool(args.command):
        parse.error("--netns runs a command: put it after --, e.g. --netns -- ansible-playbook site.yml"
                    if args.netns or args.netns_inside else "a command after -- needs --netns")
    if (args.background or args.status or args.stop) and not args.pid_file:
        parse.error("--background, --status and --stop need --pid-file")
    if args.status:
        return _status(args)
    if args.stop:
        return _stop(args)
    if args.netns:
        _check_netns_tools(parse)
    if args.background:
        if args.netns:
            parse.error("--background does not go with --netns")
        _build(args, parse)  # a bad option ends here, with its line and exit status 2
        return _background(args, argv)
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        if args.netns_inside:
            return _netns_inside(args, parse, stopping)
        if args.netns:
            return _netns_outside(args, argv, stopping)
        return _run(_build(args, parse), args, stopping)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
