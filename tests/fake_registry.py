# A fake OCI registry for den's tests: two loopback servers, A on 127.0.0.1
# (the registry) and B on 127.0.0.2 (another host: a token realm or an upload
# location). Prints "PORT_A PORT_B" and logs one JSON line per request to LOG.
#   python3 fake_registry.py SCENARIO LOG
import hashlib, json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCENARIO, LOG = sys.argv[1], sys.argv[2]
lock = threading.Lock()
ports = {}

def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

LAYER_CLAIM = b"0123456789"
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [sha(LAYER_CLAIM)]}}).encode()
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": sha(CONFIG), "size": len(CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha(LAYER_CLAIM), "size": len(LAYER_CLAIM)}]}).encode()
BIG = 64 << 20

def log(**kw):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(kw) + "\n")

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def side(self):
        return "A" if self.server.server_address[0] == "127.0.0.1" else "B"

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def stream(self, chunk, total, content_type):
        # No Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        sent = 0
        try:
            while sent < total:
                self.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        log(side=self.side(), streamed=sent)

    def handle_any(self):
        auth = self.headers.get("Authorization")
        log(side=self.side(), method=self.command, path=self.path, auth=auth)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        getattr(self, "on_" + SCENARIO.replace("-", "_"))(auth)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = handle_any

    def on_bigblob(self, auth):
        p = self.path
        if p == "/v2/":
            self.reply(200)
        elif "/manifests/" in p:
            self.reply(200, MANIFEST, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        elif p.endswith(sha(CONFIG)):
            self.reply(200, CONFIG)
        elif "/blobs/" in p:
            self.stream(b"x" * 65536, BIG, "application/octet-stream")
        else:
            self.reply(404)

    def on_bigmanifest(self, auth):
        if "/manifests/" in self.path:
            self.stream(b" " * 65536, BIG, "application/vnd.oci.image.manifest.v1+json")
        else:
            self.reply(200 if self.path == "/v2/" else 404)

    def on_realm(self, auth):
        if self.side() == "B":
            self.reply(200, json.dumps({"token": "tok"}).encode(), [("Content-Type", "application/json")])
        elif auth == "Bearer tok":
            self.reply(404)
        else:
            realm = 'Bearer realm="http://127.0.0.2:%d/token",service="fake"' % ports["B"]
            self.reply(401, b"{}", [("WWW-Authenticate", realm)])

    def on_push(self, auth):
        if self.side() == "B":
            self.reply(201)
        elif not (auth or "").startswith("Basic "):
            self.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="fake"')])
        elif self.command == "HEAD":
            self.reply(404)
        elif self.command == "POST":
            loc = "http://127.0.0.2:%d/upload/1" % ports["B"]
            self.reply(202, b"", [("Location", loc)])
        else:
            self.reply(201)

servers = {}
for side, addr in (("A", "127.0.0.1"), ("B", "127.0.0.2")):
    s = ThreadingHTTPServer((addr, 0), H)
    s.daemon_threads = True
    servers[side] = s
    ports[side] = s.server_address[1]
for s in servers.values():
    threading.Thread(target=s.serve_forever, daemon=True).start()
print(ports["A"], ports["B"], flush=True)
sys.stdin.read()  # runs until the test closes our stdin
