"""A webhook endpoint for scripts/bench-gateway. Answers every POST 204 over
HTTP/1.1 keep-alive. Deliveries go to /hook; once EXPECTED of them arrived
(or TIMEOUT seconds passed) it prints how many came and at what rate, from
the first to the last, and exits. POSTs to any other path are answered and
not counted: wrk measures the endpoint's own ceiling there.

    python3 webhook-receiver.py PORT EXPECTED TIMEOUT
"""

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, EXPECTED, TIMEOUT = (int(arg) for arg in sys.argv[1:4])
arrivals = []
done = threading.Event()


class Endpoint(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (the http.server API)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
        if self.path == "/hook":
            arrivals.append(time.monotonic())
            if len(arrivals) >= EXPECTED:
                done.set()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Endpoint)
threading.Thread(target=server.serve_forever, daemon=True).start()
done.wait(TIMEOUT)
if len(arrivals) < 2:
    sys.exit(f"only {len(arrivals)} of {EXPECTED} deliveries within {TIMEOUT} s")
span = arrivals[-1] - arrivals[0]
print(f"{len(arrivals)} of {EXPECTED} deliveries in {span:.1f} s: {(len(arrivals) - 1) / span:,.0f} /s")
