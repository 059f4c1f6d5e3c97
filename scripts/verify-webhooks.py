"""Checks idmesh's webhook deliveries with an independent verifier: the
Standard Webhooks reference library for Python (`standardwebhooks`, from
PyPI), which scripts/conformance installs.

Against a running `idmesh dev`: registers an endpoint served here for a new
directory's events, writes a user and a group through SCIM, and requires
that every delivery verifies with the endpoint's secret (and not with
another), that `webhook-id` is the event's id, and that the events arrive
in sequence order. Exits non-zero with the reason otherwise.

    python verify-webhooks.py IDMESH_BINARY DATA_DIR
"""

import json
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

EXPECTED = ["user.created", "group.created", "member.added"]


class Endpoint(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        Endpoint.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def idmesh(binary, data_dir, *args):
    done = subprocess.run(
        [binary, *args, "--data-dir", data_dir], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"idmesh {' '.join(args)}: {done.stderr}")
    return json.loads(done.stdout)


def scim(base, token, path, document):
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(document).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def main(binary, data_dir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"

    directory = idmesh(binary, data_dir, "directory", "create", "--name", "webhook-check", "--json")
    webhook = idmesh(
        binary, data_dir, "webhook", "add", "--url", url, "--directory", directory["id"],
        "--type", ",".join(EXPECTED), "--json",
    )
    base, token = directory["scim_base_url"], directory["token"]
    user = scim(base, token, "/Users", {"userName": "webhook-check@example.com"})
    scim(base, token, "/Groups", {"displayName": "Webhook check", "members": [{"value": user["id"]}]})

    deadline = time.monotonic() + 30
    while len(Endpoint.received) < len(EXPECTED):
        if time.monotonic() > deadline:
            sys.exit(f"only {len(Endpoint.received)} of {len(EXPECTED)} deliveries within 30 s")
        time.sleep(0.05)
    server.shutdown()

    verifier = Webhook(webhook["secret"])
    other = Webhook("whsec_" + "A" * 32)
    sequences = []
    for headers, body in Endpoint.received:
        headers = {name.lower(): value for name, value in headers.items()}
        payload = verifier.verify(body, headers)
        try:
            other.verify(body, headers)
            sys.exit("a delivery verified with a secret that is not the endpoint's")
        except WebhookVerificationError:
            pass
        if payload["data"]["id"] != headers["webhook-id"]:
            sys.exit(f"webhook-id {headers['webhook-id']} is not the event's id {payload['data']['id']}")
        sequences.append((payload["data"]["sequence"], payload["type"]))
    types = [kind for _, kind in sequences]
    numbers = [number for number, _ in sequences]
    if types != EXPECTED or numbers != sorted(numbers):
        sys.exit(f"deliveries out of order: {sequences}")
    print(f"webhooks: {len(sequences)} deliveries verified by standardwebhooks, in sequence order")


if __name__ == "__main__":
    main(*sys.argv[1:])
