#!/bin/bash
# A headline in its meeting's list and in its owner's list, the same object
# in both (the meeting's list is asked with Include_Origin): the owner's list
# owns raw and is_archived, and its copy must not be dropped as a repeat of
# the meeting's, which answers first here. Archived flips upstream between
# two runs; the mirror follows, and a run with nothing changed keeps it.
. "$(dirname "$0")/lib.sh"

new_db twolists25 || exit 1
state="$TEST_TMP/state"
echo false >"$state"
portfile="$TEST_TMP/port"
python3 - "$state" "$portfile" <<'PY' 2>"$TEST_TMP/server.err" &
import http.server, json, os, sys, time

state_file, port_file = sys.argv[1], sys.argv[2]

def headline():
    archived = open(state_file).read().strip() == "true"
    return {"Id": 700, "Name": "h", "Owner": {"Id": 1}, "CreateTime": "2024-06-01T10:00:00Z",
            "Archived": archived, "Origin": "W", "OriginId": 5}

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path.endswith("/search/all"):
            body = [{"Id": 1, "Name": "Ann", "Email": "ann@x.io", "ResultType": "User"}]
        elif path.endswith("/L10/1/list"):
            body = [{"Id": 5, "Name": "W"}]
        elif path.endswith("/L10/5"):
            body = {"Id": 5, "Basics": {"Name": "W"}}
        elif path.endswith("/L10/5/headlines"):
            body = [headline()]
        elif path.endswith("/headline/users/1"):
            time.sleep(1.5)  # the meeting's list answers first
            body = [headline()]
        elif "/scorecard/" in path:
            body = {"Scores": []}
        else:
            body = []
        data = json.dumps(body).encode()
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
PY
SIM_PIDS="$SIM_PIDS $!"
for _ in $(seq 1 100); do [ -s "$portfile" ] && break; sleep 0.05; done
SIM_API="http://127.0.0.1:$(cat "$portfile")/api/v1"
conf="$TEST_TMP/r.conf"
write_conf "$conf"
echo 'sync = { streams = ["users", "meetings", "headlines"]; };' >>"$conf"
archived() { q "SELECT is_archived || ' ' || (raw->>'Archived') FROM bloom.headlines WHERE id = 700"; }

"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run1.err"
expect_eq "the first sync exits 0" $? 0
expect_eq "the headline is not archived" "$(archived)" "false false"
echo true >"$state"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run2.err"
expect_eq "the sync after it was archived upstream exits 0" $? 0
expect_eq "the headline is archived, in is_archived and in raw" "$(archived)" "true true"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run3.err"
expect_eq "a sync with nothing changed exits 0" $? 0
expect_eq "it stays archived" "$(archived)" "true true"

finish
