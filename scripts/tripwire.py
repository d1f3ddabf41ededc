"""A listener on 169.254.169.254:80 inside the test run's network namespace (scripts/offline).

Every connection is answered with 503 and recorded as one line in the log file given as
the first argument: the request line and the peer. The log's first line, "listening",
says it is ready. Standard library only; it stops when its parent kills it.
"""
from __future__ import annotations

import socket
import sys
import threading


def main() -> None:
    log_path = sys.argv[1]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("169.254.169.254", 80))
    server.listen(64)
    lock = threading.Lock()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("listening\n")
        log.flush()

        def handle(conn: socket.socket, peer: tuple) -> None:
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1", "replace")
                except OSError:
                    first = "(no request line)"
                with lock:
                    log.write(f"{peer[0]}:{peer[1]} {first!r}\n")
                    log.flush()
                try:
                    conn.sendall(b"HTTP/1.1 503 Tripwire\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

        while True:
            conn, peer = server.accept()
            threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


if __name__ == "__main__":
    main()
