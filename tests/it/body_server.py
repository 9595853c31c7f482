"""A tiny API server for the integration tests that need bodies bloomsim
cannot produce (bad records, a record in two lists, slow answers).

usage: python3 body_server.py PORTFILE CODE [STATE_FILE]

CODE is a Python file defining body(path) for every GET (path without its
query): it returns an object, sent as JSON, or bytes, sent as they are; or
None, for one_meeting_org's answer: one user (Ann, 1) attending one meeting
(W, 5), an empty scorecard and empty lists. state() reads STATE_FILE, which
the test rewrites between syncs. Writes the port it listens on (127.0.0.1,
picked by the system) to PORTFILE."""
import http.server
import json
import os
import sys

port_file, code_file = sys.argv[1], sys.argv[2]
state_file = sys.argv[3] if len(sys.argv) > 3 else None


def state():
    return open(state_file).read().strip()


def one_meeting_org(path):
    if path.endswith("/search/all"):
        return [{"Id": 1, "Name": "Ann", "Email": "ann@x.io", "ResultType": "User"}]
    if path.endswith("/L10/1/list"):
        return [{"Id": 5, "Name": "W"}]
    if path.endswith("/L10/5"):
        return {"Id": 5, "Basics": {"Name": "W"}}
    if "/scorecard/" in path:
        return {"Scores": []}
    return []


handlers = {"state": state, "__name__": "bodies"}
with open(code_file) as f:
    exec(compile(f.read(), code_file, "exec"), handlers)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        answer = handlers["body"](path)
        if answer is None:
            answer = one_meeting_org(path)
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
