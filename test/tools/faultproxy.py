#!/usr/bin/env python3
"""faultproxy: a TLS-terminating HTTPS proxy in front of the test cluster's kube-apiserver that
injects faults, for tests of rollgate's Kubernetes API client (test/integration/test_faults.c).

  faultproxy.py --upstream 127.0.0.1:PORT --ca-dir DIR --work WORKDIR --log FILE
                [--port N] [--port-file FILE] [--match SUBSTRING] [--fault SPEC]...
                [--control FILE]

It listens on 127.0.0.1 (--port, else a free port; printed, and written to --port-file), serves
TLS with a certificate for 127.0.0.1 that it signs at startup with DIR/ca.crt and DIR/ca.key
(kept in WORKDIR), and forwards each HTTP/1.1 request to the upstream over TLS verified against
DIR/ca.crt, keeping both connections alive between requests.

A fault SPEC is KIND[:PARAM...]:
  latency:300ms           wait that long (ms, s or a bare number of ms), then forward
  503, 429, 500, ...      answer that status with a Kubernetes Status body, not forwarded
                          (retry-after=N adds "Retry-After: N")
  reset                   read the request, then close the connection with a TCP RST
  stall                   read the request and never answer (until the client gives up)
  drop                    forward the request, then reset instead of answering: the request
                          took effect but its answer is lost
  pass                    forward (no fault; for a control file)
and PARAMs are count=N (the next N requests it applies to; default every one) and method=M
(only requests with that method). For each request whose path contains --match (every request
without it), the first fault of the plan that applies and is not used up is injected.

--control FILE: when FILE exists, its lines (fault specs, and "match SUBSTRING") replace the
command line's plan; it is read again for every request, and a changed content starts a new
plan with fresh counts. Write it by renaming a new file over it.

--log FILE gets one line per request, written when the request is done (a stall: when it
starts); seq numbers requests in arrival order, t_in/t_out are milliseconds since the proxy
started when the request was read / its answer sent (or the fault applied):
  seq=3 t_in=1200 t_out=1201 conn=2 method=GET path=/apis/... fault=503 status=503
"""
import argparse
import json
import os
import secrets
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

START = time.monotonic()
lock = threading.Lock()
state = {"seq": 0, "conn": 0, "control": None, "plan": [], "match": None}


def ms():
    return int((time.monotonic() - START) * 1000)


def duration_ms(s):
    if s.endswith("ms"):
        return float(s[:-2])
    if s.endswith("s"):
        return float(s[:-1]) * 1000
    return float(s)


def parse_fault(spec):
    parts = spec.strip().split(":")
    f = {"kind": parts[0], "count": None, "method": None, "retry_after": None, "ms": 0}
    if not (f["kind"] in ("latency", "reset", "stall", "drop", "pass") or f["kind"].isdigit()):
        raise ValueError("unknown fault %r" % spec)
    for p in parts[1:]:
        key, eq, value = p.partition("=")
        if not eq and f["kind"] == "latency":
            f["ms"] = duration_ms(key)
        elif key in ("count", "retry-after"):
            f[key.replace("-", "_")] = int(value)
        elif key == "method":
            f["method"] = value.upper()
        else:
            raise ValueError("unknown parameter %r in fault %r" % (p, spec))
    return f


def choose(method, path):
    """The fault for this request (or None), counting it; also its seq number."""
    with lock:
        state["seq"] += 1
        seq = state["seq"]
        if args.control:
            try:
                with open(args.control) as fh:
                    text = fh.read()
            except FileNotFoundError:
                text = None
            if text is not None and text != state["control"]:
                lines = [l.strip() for l in text.splitlines()]
                lines = [l for l in lines if l and not l.startswith("#")]
                state["match"] = None
                for l in lines:
                    if l == "match" or l.startswith("match "):
                        state["match"] = l[6:] or None
                state["plan"] = [parse_fault(l) for l in lines if not l.startswith("match")]
                state["control"] = text
        if state["match"] and state["match"] not in path:
            return seq, None
        for f in state["plan"]:
            if f["count"] == 0 or (f["method"] and f["method"] != method):
                continue
            if f["count"] is not None:
                f["count"] -= 1
            return seq, f
        return seq, None


def log(seq, t_in, conn, method, path, fault, status, t_out=None):
    line = "seq=%d t_in=%d t_out=%d conn=%d method=%s path=%s fault=%s status=%s\n" % (
        seq, t_in, ms() if t_out is None else t_out, conn, method, path, fault, status)
    with lock:
        with open(args.log, "a") as fh:
            fh.write(line)


def read_head(rd):
    """Start line and header lines of a message; None at a clean end of the stream."""
    line = rd.readline(65537)
    if not line:
        return None
    lines = [line]
    while lines[-1] not in (b"\r\n", b"\n"):
        lines.append(rd.readline(65537))
        if not lines[-1] or len(lines) > 200:
            raise ConnectionError("truncated or oversized header")
    return lines


def header(lines, name):
    for l in lines[1:]:
        k, _, v = l.decode("latin-1").partition(":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def relay_body(head, rd, out, until_eof_ok):
    """Copies a message body (chunked, Content-Length, or until EOF) from rd to out (a
    function taking bytes, or None to discard). Returns False when it ran until EOF."""
    def put(b):
        if out:
            out(b)
    if (header(head, "transfer-encoding") or "").lower() == "chunked":
        while True:
            size_line = rd.readline(1024)
            put(size_line)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    t = rd.readline(65537)
                    put(t)
                    if t in (b"\r\n", b"\n", b""):
                        return True
            put(rd.read(size + 2))
    n = header(head, "content-length")
    if n is not None:
        left = int(n)
        while left > 0:
            b = rd.read(min(left, 65536))
            if not b:
                raise ConnectionError("body cut short")
            put(b)
            left -= len(b)
        return True
    if not until_eof_ok:
        return True  # a request without a body
    while True:
        b = rd.read1(65536)
        if not b:
            return False
        put(b)


def status_answer(code, retry_after):
    reason = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
              504: "Timeout"}.get(code, "InternalError")
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "faultproxy: injected %d" % code, "reason": reason,
                       "code": code}).encode()
    head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        code, reason, len(body))
    if retry_after is not None:
        head += "Retry-After: %d\r\n" % retry_after
    return head.encode() + b"\r\n" + body


def reset(sock, rd):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rd.close()  # the socket's file descriptor stays open while a makefile of it does
    sock.close()


class Upstream:
    """One kept-alive TLS connection to the API server, made again when it was closed."""

    def __init__(self):
        self.sock = self.rd = None

    def close(self):
        if self.sock:
            self.rd.close()
            self.sock.close()
        self.sock = self.rd = None

    def exchange(self, head, body, method):
        reused = self.sock is not None
        if not self.sock:
            raw = socket.create_connection((args.up_host, args.up_port), timeout=60)
            self.sock = up_ctx.wrap_socket(raw, server_hostname=args.up_host)
            self.rd = self.sock.makefile("rb")
        try:
            self.sock.sendall(b"".join(head) + body)
            resp = read_head(self.rd)
        except (OSError, ssl.SSLError):
            resp = None
        if resp is None and reused:  # the server closed the idle connection: once more, anew
            self.close()
            return self.exchange(head, body, method)
        while resp and resp[0].split()[1].startswith(b"1"):  # 100 Continue and the like
            resp = read_head(self.rd)
        if not resp:
            raise ConnectionError("upstream closed the connection")
        chunks = []
        code = int(resp[0].split()[1])
        if method != "HEAD" and code not in (204, 304):
            if not relay_body(resp, self.rd, chunks.append, True):
                self.close()
        if (header(resp, "connection") or "").lower() == "close":
            self.close()
        return code, b"".join(resp) + b"".join(chunks)


def serve(raw, conn):
    try:
        sock = srv_ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    rd = sock.makefile("rb")
    up = Upstream()
    try:
        while True:
            head = read_head(rd)
            if head is None:
                break
            t_in = ms()
            method, path = head[0].decode("latin-1").split()[:2]
            body = []
            relay_body(head, rd, body.append, False)
            body = b"".join(body)
            seq, f = choose(method, path)
            kind = f["kind"] if f else "none"
            if kind == "latency":
                time.sleep(f["ms"] / 1000)
            if kind == "reset":
                log(seq, t_in, conn, method, path, kind, "-")
                reset(sock, rd)
                return
            if kind == "stall":
                log(seq, t_in, conn, method, path, kind, "-")
                sock.settimeout(600)
                try:
                    while rd.read1(4096):  # until the client closes
                        pass
                except (OSError, ssl.SSLError):
                    pass
                return
            if kind.isdigit():
                # Taken before the answer leaves: on a loaded machine this thread may run
                # again only after the client has read the answer and begun its wait, and
                # a Retry-After gap measured from then would come out short.
                t_out = ms()
                sock.sendall(status_answer(int(kind), f["retry_after"]))
                log(seq, t_in, conn, method, path, kind, kind, t_out)
                continue
            try:
                code, answer = up.exchange(head, body, method)
            except (OSError, ssl.SSLError, ValueError, IndexError) as e:
                up.close()
                print("faultproxy: upstream: %s" % e, file=sys.stderr, flush=True)
                code, answer = 502, status_answer(502, None)
            if kind == "drop":
                log(seq, t_in, conn, method, path, kind, code)
                reset(sock, rd)
                return
            sock.sendall(answer)
            log(seq, t_in, conn, method, path, kind, code)
            if (header(head, "connection") or "").lower() == "close":
                break
    except (OSError, ssl.SSLError, ValueError) as e:
        print("faultproxy: connection %d: %s" % (conn, e), file=sys.stderr, flush=True)
    finally:
        up.close()
        try:
            rd.close()
            sock.close()
        except OSError:
            pass


def make_cert(ca_dir, work):
    key, csr, crt, ext = (os.path.join(work, "proxy." + s) for s in ("key", "csr", "crt", "ext"))
    with open(ext, "w") as fh:
        fh.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                 "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-subj", "/CN=faultproxy", "-out", csr)
    # -set_serial, not -CAcreateserial: nothing is written into the cluster's directory.
    run("x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca.crt"), "-CAkey",
        os.path.join(ca_dir, "ca.key"), "-set_serial", "0x" + secrets.token_hex(8), "-days", "1",
        "-extfile", ext, "-out", crt)
    return crt, key


def watch_parent():
    """Ends the proxy when the process that started it is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    global args, srv_ctx, up_ctx
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True)
    p.add_argument("--ca-dir", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--match")
    p.add_argument("--fault", action="append", default=[])
    p.add_argument("--control")
    args = p.parse_args()
    args.up_host, _, up_port = args.upstream.rpartition(":")
    args.up_port = int(up_port)
    state["plan"] = [parse_fault(f) for f in args.fault]
    state["match"] = args.match

    os.makedirs(args.work, exist_ok=True)
    crt, key = make_cert(args.ca_dir, args.work)
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(crt, key)
    up_ctx = ssl.create_default_context(cafile=os.path.join(args.ca_dir, "ca.crt"))

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    open(args.log, "a").close()
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as fh:
            fh.write("%d\n" % port)
        os.rename(args.port_file + ".tmp", args.port_file)
    print("faultproxy: listening on 127.0.0.1:%d" % port, flush=True)
    threading.Thread(target=watch_parent, daemon=True).start()
    while True:
        raw, _ = lsock.accept()
        with lock:
            state["conn"] += 1
            conn = state["conn"]
        threading.Thread(target=serve, args=(raw, conn), daemon=True).start()


if __name__ == "__main__":
    main()
