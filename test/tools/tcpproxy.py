#!/usr/bin/env python3
"""tcpproxy: a plain TCP proxy in front of the test PostgreSQL that injects network faults,
for the tests of rollgate's database deadlines (test/integration/test_dbfaults.c).

  tcpproxy.py --upstream HOST:PORT --port-file FILE --log FILE [--control FILE] [--mode MODE]

It listens on 127.0.0.1 (a free port, written to --port-file) and forwards each connection
to the upstream. MODE (from --mode, replaced by the control file's content whenever that file
exists; write it by renaming a new file over it):

  pass              forward both ways
  stall             forward nothing more, either way, on every connection, and accept new
                    connections without forwarding anything (a host that vanished, a network
                    policy that drops packets): nothing is closed
  stall-after:N     forward the first N bytes each connection's client sends (and the answers
                    until then), then stall that connection both ways
  stall-on:TEXT     forward until a client sends TEXT (the chunk holding it is forwarded, so
                    the server runs it), then stall that connection both ways: its answer
                    never arrives
  reset             close every connection with a TCP RST, at once for new ones
  reset-on:TEXT     forward until a client sends TEXT, then close that connection with an RST
                    (the chunk holding it is not forwarded)

--log gets one line per event: "accept conn=N", "stall conn=N after=BYTES", "reset conn=N".
The proxy stops on SIGTERM, closing everything.
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading

lock = threading.Lock()
args = None
log_file = None


def log(line):
    with lock:
        log_file.write(line + "\n")
        log_file.flush()


def mode():
    if args.control and os.path.exists(args.control):
        with open(args.control) as f:
            return f.read().strip()
    return args.mode


def rst(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


class Conn:
    def __init__(self, n, client, server):
        self.n = n
        self.client = client
        self.server = server
        self.sent = 0  # bytes of the client's forwarded to the server
        self.stalled = threading.Event()
        self.closed = threading.Event()

    def stall(self):
        if not self.stalled.is_set():
            self.stalled.set()
            log("stall conn=%d after=%d" % (self.n, self.sent))

    def reset(self):
        log("reset conn=%d" % self.n)
        self.closed.set()
        rst(self.client)
        rst(self.server)

    def pump(self, src, dst, from_client):
        while not self.closed.is_set():
            if self.stalled.is_set():
                # Keep both sockets open and read nothing: the peer's data piles up in the
                # kernel's buffers, as on a path that silently drops packets.
                self.closed.wait(1)
                continue
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed.set()
                for s in (self.client, self.server):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            m = mode()
            if self.stalled.is_set() or m == "stall":
                self.stall()
                continue
            if m == "reset":
                self.reset()
                return
            if from_client and m.startswith("reset-on:") and m[9:].encode() in data:
                self.reset()
                return
            if from_client and m.startswith("stall-after:"):
                left = int(m[12:]) - self.sent
                if left <= 0:
                    self.stall()
                    continue
                if len(data) > left:
                    data = data[:left]
                    self.sent += len(data)
                    dst.sendall(data)
                    self.stall()
                    continue
            # Stalled before the chunk holding TEXT goes on, not after: else the server's
            # answer to it could come back through the other pump first.
            if from_client and m.startswith("stall-on:") and m[9:].encode() in data:
                self.stall()
            try:
                dst.sendall(data)
            except OSError:
                self.closed.set()
                return
            if from_client:
                self.sent += len(data)


def serve(listener):
    n = 0
    while True:
        client, _ = listener.accept()
        n += 1
        log("accept conn=%d" % n)
        m = mode()
        if m == "reset":
            log("reset conn=%d" % n)
            rst(client)
            continue
        host, port = args.upstream.rsplit(":", 1)
        try:
            server = socket.create_connection((host, int(port)))
        except OSError:
            rst(client)
            continue
        c = Conn(n, client, server)
        if m == "stall" or (m.startswith("stall-after:") and int(m[12:]) == 0):
            c.stall()
        for src, dst, fc in ((client, server, True), (server, client, False)):
            threading.Thread(target=c.pump, args=(src, dst, fc), daemon=True).start()


def main():
    global args, log_file
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--control")
    p.add_argument("--mode", default="pass")
    args = p.parse_args()
    log_file = open(args.log, "a")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(tmp, args.port_file)
    serve(listener)


if __name__ == "__main__":
    sys.exit(main())
