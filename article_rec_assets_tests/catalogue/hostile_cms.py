"""A hostile CMS: a JSON articles API whose article id names how it misbehaves (an endless
body, a trickle, a redirect to another host, a date in year 9999...), beside good articles. For
the catalogue's tests and `bench/bench_hostile_cms.py`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

# The pause between two bytes of a trickling answer; the size of the `huge` answer's body.
TRICKLE_BYTE_SECONDS = 0.2
HUGE_BYTES = 1_000_000


def article(external_id: str, **fields) -> dict:
    return {
        "headline": f"Good article {external_id}",
        "pub_date": "2024-05-09T08:00:00Z",
        "url": f"/news/{external_id}/",
        **fields,
    }


class Handler(BaseHTTPRequestHandler):
    """`/api/v2/articles/<id>`: the id names the misbehaviour; anything else is a good article."""

    protocol_version = "HTTP/1.1"
    other_origin = ""  # set to the second server's URL
    trickle_seconds = TRICKLE_BYTE_SECONDS
    huge_bytes = HUGE_BYTES
    requests: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def send_json(self, data: object, status: int = 200, headers: dict | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        key = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        try:
            if key == "endless":  # chunked, no length, never ends
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"[" * 65536
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            elif key == "huge":  # a title far above any bound, its length announced
                head, tail = (
                    b'{"pub_date": "2024-05-09T08:00:00Z", "url": "/news/huge/", "headline": "',
                    b'"}',
                )
                self.send_response(200)
                self.send_header("Content-Length", str(len(head) + Handler.huge_bytes + len(tail)))
                self.end_headers()
                self.wfile.write(head)
                for start in range(0, Handler.huge_bytes, 1 << 20):
                    self.wfile.write(b"x" * min(1 << 20, Handler.huge_bytes - start))
                self.wfile.write(tail)
            elif key == "unannounced":  # a large body read until the connection closes
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(json.dumps(article(key, headline="y" * 1_000_000)).encode())
                self.close_connection = True
            elif key == "long-title":  # within the body bound, far beyond any headline
                self.send_json(article(key, headline="Long " * 30_000))
            elif key == "trickle":  # one byte at a time, each within the read timeout
                body = json.dumps(article(key)).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(Handler.trickle_seconds)
            elif key == "trickle-headers":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for byte in b"X-Slow: " + b"z" * 100:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(Handler.trickle_seconds)
            elif key == "off-origin":
                self.send_response(302)
                self.send_header("Location", f"{self.other_origin}/api/v2/articles/stolen")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif key == "moved":  # within the origin: followed
                self.send_response(301)
                self.send_header("Location", "/api/v2/articles/moved-here")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif key == "loop":
                self.send_response(302)
                self.send_header("Location", "/api/v2/articles/loop")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif key == "year-9999":
                self.send_json(article(key, pub_date="9999-12-31T23:59:59Z"))
            elif key == "year-0001":
                self.send_json(article(key, pub_date="0001-01-01T00:00:00Z"))
            elif key == "epoch-ms":
                self.send_json(article(key, pub_date=1_715_342_400_000))  # 2024-05-10 12:00 UTC
            elif key == "epoch-1e12":
                self.send_json(article(key, pub_date=10**12))  # milliseconds: 2001-09-09
            elif key == "now":
                self.send_json(article(key, pub_date="now"))
            elif key == "link-number":
                self.send_json(article(key, url=12345))
            elif key == "link-list":
                self.send_json(article(key, url=["/news/a/", "/news/b/"]))
            elif key == "title-object":
                self.send_json(article(key, headline={"rendered": ["x"]}))
            elif key == "superscript-retry":
                self.send_json({"detail": "busy"}, 503, {"Retry-After": "²"})
            elif key == "encoded-html":
                self.send_json(article(key, headline="&lt;script&gt;alert(1)&lt;/script&gt;Budget &lt;3"))
            elif key == "brackets":
                self.send_json(article(key, headline="<" * 150_000))
            elif key == "deep":  # nesting beyond Python's recursion limit
                self._raw(b"[" * 150_000 + b"]" * 150_000)
            elif key.startswith("slow"):
                time.sleep(0.3)
                self.send_json(article(key))
            elif key == "stolen":  # what the other host would say
                self.send_json(article("good", headline="Not ours"))
            else:
                self.send_json(article(key))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _raw(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def hostile_cms(trickle_seconds: float = TRICKLE_BYTE_SECONDS, huge_bytes: int = HUGE_BYTES) -> Iterator[str]:
    """The hostile CMS and a second host it redirects to; yields the CMS's base URL."""
    servers = []
    Handler.trickle_seconds, Handler.huge_bytes = trickle_seconds, huge_bytes
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    Handler.other_origin = f"http://127.0.0.1:{servers[1].server_port}"
    Handler.requests = []
    try:
        yield f"http://127.0.0.1:{servers[0].server_port}"
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
