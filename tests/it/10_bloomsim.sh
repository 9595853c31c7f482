#!/usr/bin/env bash
# 10_bloomsim.sh — integration test of bloomsim over real HTTP (curl CLI).
# Env: BLOOMSIM (default build/bloomsim), TEST_TMP (scratch dir).
# Prints "ok - <name>" / "not ok - <name>" per check; exits non-zero on failure.
set -u

BLOOMSIM=${BLOOMSIM:-build/bloomsim}
TEST_TMP=${TEST_TMP:-$(mktemp -d)}
mkdir -p "$TEST_TMP"
T="$TEST_TMP/bloomsim_it"
rm -rf "$T" && mkdir -p "$T"
KEY=test-key-123
FAILED=0
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
}
trap cleanup EXIT

check() { # check NAME CMD...
	local name=$1
	shift
	if "$@" >"$T/check.out" 2>&1; then
		echo "ok - $name"
	else
		echo "not ok - $name"
		sed 's/^/#   /' "$T/check.out" | head -20
		FAILED=1
	fi
}

# start NAME ARGS... : starts bloomsim --port 0, sets PORT_<NAME> and PID_<NAME>
start() {
	local name=$1 i port=""
	shift
	"$BLOOMSIM" --port 0 --key "$KEY" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	local pid=$!
	PIDS+=("$pid")
	for i in $(seq 1 100); do
		port=$(head -n1 "$T/$name.out" 2>/dev/null)
		[ -n "$port" ] && break
		sleep 0.05
	done
	printf -v "PORT_$name" '%s' "$port"
	printf -v "PID_$name" '%s' "$pid"
	[ -n "$port" ]
}

api() { # api PORT PATH [curl args...] -> body on stdout
	local port=$1 path=$2
	shift 2
	curl -sS --max-time 10 -H "Authorization: Bearer $KEY" "$@" "http://127.0.0.1:$port/api/v1/$path"
}

py() { python3 -c "$@"; }

# ---- the client-side mirror, computed from the API with the mirror rules ----
cat >"$T/client.py" <<'PYEOF'
import datetime, json, re, subprocess, sys

port, key = sys.argv[1], sys.argv[2]

def get(path):
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-H", "Authorization: Bearer " + key,
                          "http://127.0.0.1:%s/api/v1/%s" % (port, path)],
                         check=True, capture_output=True).stdout
    return out.decode("utf-8")

def raw_items(text):
    """The raw text of each element of a JSON array."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    items = []
    while True:
        while text[i] in " \n\r\t,":
            i += 1
        if text[i] == "]":
            return items
        obj, end = dec.raw_decode(text, i)
        items.append((obj, text[i:end]))
        i = end

def clean(s, nullable=True):
    if s is None:
        return None
    s = s.replace("\x00", "")
    return None if (nullable and s == "") else s

def ts(v):
    if v is None or v == "":
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)(?:T(\d\d:\d\d:\d\d)(?:\.(\d+))?)?(Z)?", v)
    assert m, "bad date " + v
    # more than six digits: rounded as PostgreSQL reads them, to
    # rint(fraction * 1e6) microseconds, carried into the seconds
    frac = m.group(3) or ""
    when = datetime.datetime.fromisoformat(m.group(1) + "T" + (m.group(2) or "00:00:00"))
    if len(frac) > 6:
        us = round(float("0." + frac) * 1000000)
        if us >= 1000000:
            when += datetime.timedelta(seconds=1)
            us = 0
        frac = "%06d" % us
    frac = frac.rstrip("0")
    return when.isoformat() + ("." + frac if frac else "") + "Z"

raws = {}  # (kind, id) -> raw text, to prove identical serialisation
def remember(kind, obj, raw):
    k = (kind, obj["Id"])
    if k in raws:
        assert raws[k] == raw, "%s %s serialised differently" % k
    raws[k] = raw

users, meetings, attendees, todos, meas, mm, scores = {}, {}, set(), {}, {}, set(), {}
for r in json.loads(get("search/all?term=%25")):
    if r["ResultType"] != "User":
        continue
    email = r.get("Email")
    users[r["Id"]] = {"id": r["Id"], "name": clean(r["Name"], False), "email": clean(email),
                      "title": clean(r.get("Description")), "image_url": clean(r.get("ImageUrl")),
                      "organization_id": r.get("OrganizationId"),
                      "is_placeholder": (email is None or email == "") or r.get("ImageUrl") == "/i/userplaceholder"}
list_rows = {}
for uid in users:
    for row in json.loads(get("L10/%d/list" % uid)):
        list_rows[row["Id"]] = row

def add_todo(obj, raw):
    remember("todo", obj, raw)
    if obj["Id"] < 0:
        return
    todos[obj["Id"]] = {"id": obj["Id"], "name": clean(obj["Name"], False), "details_url": clean(obj.get("DetailsUrl")),
        "due_date": ts(obj.get("DueDate")), "created_at": ts(obj.get("CreateTime")),
        "completed_at": ts(obj.get("CompleteTime")), "closed_at": ts(obj.get("CloseTime")),
        "is_complete": obj["Complete"], "meeting_id": obj.get("OriginId"), "meeting_name": clean(obj.get("Origin")),
        "owner_id": obj["Owner"]["Id"]}

def add_scores(text):
    body = text[text.index('"Scores"'):]
    for obj, raw in raw_items(body):
        remember("score", obj, raw)
        scores[obj["Id"]] = {"id": obj["Id"], "measurable_id": obj["MeasurableId"],
            "accountable_user_id": obj["AccountableUserId"], "measurable_name": clean(obj["MeasurableName"]),
            "target": obj.get("Target"), "value": obj.get("Measured"), "week": clean(obj.get("Week")),
            "week_id": obj.get("ForWeek"), "entered_at": ts(obj.get("DateEntered"))}

for mid, row in list_rows.items():
    d = json.loads(get("L10/%d" % mid))
    meetings[mid] = {"id": mid, "name": clean(d["Basics"]["Name"]), "meeting_type": clean(row.get("Type")),
                     "meeting_key": clean(row.get("Key")), "start_date_utc": ts(d.get("StartDateUtc")),
                     "created_at": ts(d.get("CreateTime")), "organization_id": d.get("OrganizationId")}
    for a in json.loads(get("L10/%d/attendees" % mid)):
        attendees.add((mid, a["Id"]))
    for obj, raw in raw_items(get("L10/%d/todos?INCLUDE_CLOSED=true" % mid)):
        add_todo(obj, raw)
    for obj, raw in raw_items(get("L10/%d/measurables" % mid)):
        if obj["Id"] is None or obj["Name"] == "":
            continue
        remember("meas", obj, raw)
        meas[obj["Id"]] = {"id": obj["Id"], "name": clean(obj["Name"]), "target": obj.get("Target"),
                           "unit": clean(obj.get("Modifiers")), "direction": clean(obj.get("Direction")),
                           "owner_id": obj["Owner"]["Id"]}
        mm.add((mid, obj["Id"]))
    add_scores(get("scorecard/meeting/%d" % mid))
for uid in users:
    for obj, raw in raw_items(get("todo/user/%d" % uid)):
        add_todo(obj, raw)
    add_scores(get("scorecard/user/%d" % uid))

# goals, issues, headlines (docs/bloomsim.md "Goals, issues and headlines")
goals, gm, issues, heads = {}, set(), {}, {}
def add_goal(obj, raw, archived_list):
    remember("goal", obj, raw)
    goals[obj["Id"]] = {"id": obj["Id"], "name": clean(obj["Name"], False), "owner_id": obj["Owner"]["Id"],
        "due_date": ts(obj.get("DueDate")), "created_at": ts(obj.get("CreateTime")),
        "is_complete": obj["Complete"], "completion": clean(obj.get("Completion")),
        "is_archived": True if archived_list else bool(obj.get("Archived"))}
    for o in obj.get("Origins") or []:
        gm.add((obj["Id"], o["Id"]))
def owner(obj):
    return None if obj.get("Owner") is None else obj["Owner"]["Id"]
def add_issue(obj, raw, meeting):
    # a meeting's list has no OriginId: otherwise the same bytes
    remember("issue", obj, re.sub(r',"OriginId":\d+', "", raw))
    issues[obj["Id"]] = {"id": obj["Id"], "name": clean(obj["Name"], False), "details_url": clean(obj.get("DetailsUrl")),
        "owner_id": owner(obj), "meeting_id": meeting if meeting is not None else obj.get("OriginId"),
        "meeting_name": clean(obj.get("Origin")), "created_at": ts(obj.get("CreateTime")),
        "closed_at": ts(obj.get("CloseTime")), "completed_at": ts(obj.get("CompleteTime")),
        "is_complete": obj["Complete"], "is_archived": bool(obj.get("Archived"))}
def add_headline(obj, raw, meeting):
    remember("headline", obj, raw)
    heads[obj["Id"]] = {"id": obj["Id"], "name": clean(obj["Name"], False), "details_url": clean(obj.get("DetailsUrl")),
        "owner_id": owner(obj), "meeting_id": meeting if meeting is not None else obj.get("OriginId"),
        "meeting_name": clean(obj.get("Origin")), "created_at": ts(obj.get("CreateTime")),
        "closed_at": ts(obj.get("CloseTime")), "is_archived": bool(obj.get("Archived"))}
for mid in list_rows:
    plain = json.loads(get("L10/%d/issues" % mid))
    for obj, raw in raw_items(get("L10/%d/issues?INCLUDE_RESOLVED=true" % mid)):
        assert "OriginId" not in obj, "a meeting's issue list carries OriginId"
        add_issue(obj, raw, mid)
    assert all(not i["Complete"] for i in plain), "resolved issues listed without INCLUDE_RESOLVED"
    assert all("Origin" not in h for h in json.loads(get("L10/%d/headlines" % mid)))
    for obj, raw in raw_items(get("L10/%d/headlines?Include_Origin=true" % mid)):
        add_headline(obj, raw, mid)
for uid in users:
    assert all("Origins" not in g for g in json.loads(get("rocks/user/%d" % uid)))
    for obj, raw in raw_items(get("rocks/user/%d?include_origin=true" % uid)):
        add_goal(obj, raw, False)
    for obj, raw in raw_items(get("archivedrocks/user/%d" % uid)):
        add_goal(obj, raw, True)
    for obj, raw in raw_items(get("issues/users/%d" % uid)):
        add_issue(obj, raw, None)
    for obj, raw in raw_items(get("headline/users/%d" % uid)):
        add_headline(obj, raw, None)
assert any(i["owner_id"] is None for i in issues.values()), "no issue with a null Owner"
assert any(len([1 for g, m in gm if g == k]) > 1 for k in goals), "no goal with several Origins"

mirror = {
    "users": [users[k] for k in sorted(users)],
    "meetings": [meetings[k] for k in sorted(meetings)],
    "meeting_attendees": [{"meeting_id": m, "user_id": u} for m, u in sorted(attendees)],
    "todos": [todos[k] for k in sorted(todos)],
    "measurables": [meas[k] for k in sorted(meas)],
    "meeting_measurables": [{"meeting_id": m, "measurable_id": k} for m, k in sorted(mm)],
    "scores": [scores[k] for k in sorted(scores)],
    "goals": [goals[k] for k in sorted(goals)],
    "goal_meetings": [{"goal_id": g, "meeting_id": m} for g, m in sorted(gm)],
    "issues": [issues[k] for k in sorted(issues)],
    "headlines": [heads[k] for k in sorted(heads)],
}
expect = json.loads(subprocess.run(["curl", "-sS", "http://127.0.0.1:%s/__expect" % port],
                                   check=True, capture_output=True).stdout)
for table in mirror:
    a, b = mirror[table], expect[table]
    assert len(a) == len(b), "%s: client %d rows, expect %d" % (table, len(a), len(b))
    for x, y in zip(a, b):
        assert x == y, "%s differs:\n client %r\n expect %r" % (table, x, y)
print("rows:", {k: len(v) for k, v in mirror.items()})
PYEOF

# ---- --expect ----
expect_file_ok() { # FILE
	py '
import json, sys
d = json.load(open(sys.argv[1]))
keys = {"users","meetings","meeting_attendees","todos","measurables","meeting_measurables","scores",
        "goals","goal_meetings","issues","headlines"}
assert set(d) == keys, set(d)
assert all(len(d[k]) > 0 for k in keys)
assert d["users"] == sorted(d["users"], key=lambda r: r["id"])
' "$1"
}
check "expect file is valid json with eleven tables" \
	sh -c "'$BLOOMSIM' --key x --expect '$T/e0.json' && python3 -c 'import sys' && true"
check "expect file content" expect_file_ok "$T/e0.json"
check "expect file for a 5-user org" sh -c "'$BLOOMSIM' --users 5 --expect '$T/e5.json'"
check "expect 5-user org has the sharp edges" py '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["users"]) == 5
names = [t["name"] for t in d["todos"]]
assert "Ship v2 release" in names                      # NUL removed
assert any(len(n) > 30000 for n in names)               # long string
assert any(u["is_placeholder"] for u in d["users"])
assert any(t["closed_at"] and ".123457Z" in t["completed_at"] for t in d["todos"] if t["completed_at"])  # .1234567, rounded
assert any(m["target"] is None for m in d["measurables"])
' "$T/e5.json"
check "expect is deterministic per seed" sh -c "'$BLOOMSIM' --expect '$T/e0b.json' && cmp -s '$T/e0.json' '$T/e0b.json' && '$BLOOMSIM' --seed 7 --expect '$T/e7.json' && ! cmp -s '$T/e0.json' '$T/e7.json'"
check "bad option is rejected" sh -c "! '$BLOOMSIM' --port 0 --key k --fault-429 2 2>/dev/null"

# ---- the main server ----
check "server prints its port" start main
P=$PORT_main

status_of() { # status_of PORT PATH [curl args] -> http code
	local port=$1 path=$2
	shift 2
	curl -s -o "$T/body" -w '%{http_code}' --max-time 10 "$@" "http://127.0.0.1:$port/api/v1/$path"
}
json_ok() { py 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }

check "wrong token gets 401 json" sh -c "[ \"\$(curl -s -o '$T/b401' -w '%{http_code}' -H 'Authorization: Bearer nope' http://127.0.0.1:$P/api/v1/users/mine)\" = 401 ] && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))[\"Message\"]' '$T/b401'"
check "missing token gets 401" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$P/api/v1/users/mine)\" = 401 ]"
check "unknown id gets 404" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/999)\" = 404 ] && [ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/L10/1000000)\" = 404 ]"

shape() { # shape NAME PATH PYTHON-ASSERTIONS (d = parsed body, raw = text)
	local name=$1 path=$2 code=$3
	api "$P" "$path" >"$T/shape.json"
	check "$name" py "
import json, re, sys
raw = open(sys.argv[1], encoding='utf-8').read()
d = json.loads(raw)
$code
" "$T/shape.json"
}
U0=1000000; U3=1000003; M0=20000000; M1=20000001
shape "users/mine shape" users/mine 'assert set(d) == {"Id","Name","ImageUrl"} and d["Id"] == 1000000'
shape "users/{id} shape (NUL in name)" users/$U3 'assert d["Name"] == "山田\x00太郎"; assert "\\u0000" in raw'
shape "search/all shape" 'search/all?term=%25' '
kinds = {r["ResultType"] for r in d}
assert {"User","Team","Position","Organization"} <= kinds, kinds
for r in d:
    assert set(r) >= {"Id","Name","Description","Email","OrganizationId","ImageUrl","ResultType"}
users = [r for r in d if r["ResultType"] == "User"]
assert len(users) == 40
assert any(r["Email"] == "" for r in users) and any(r["ImageUrl"] == "/i/userplaceholder" for r in users)
assert any(r["Email"] is None for r in users) and any(r["Description"] == "" for r in users)
names = "".join(r["Name"] for r in users)
for s in ["ë", "🚀", "دانا", "山田", "\t", "\n", "\\N", "\"", "\x00"]:
    assert s in names, s
'
shape "L10/list shape" L10/list 'assert len(d) == 8 and all(set(r) == {"Id","Type","Key","Name"} for r in d)'
shape "L10/{userId}/list shape" L10/$U0/list 'assert {r["Id"] for r in d} >= {20000000, 20000001} and d[0]["Key"] == "NameId_%d" % d[0]["Id"]'
shape "L10/{meetingId} shape" L10/$M0 'assert d["Id"] == 20000000 and d["Basics"]["Name"] and d["CreateTime"].endswith(".123Z") and d["OrganizationId"] == 42'
shape "L10/{meetingId} absent and null fields" L10/$M1 'assert "StartDateUtc" not in d and "OrganizationId" not in d and d["CreateTime"][-1] != "Z"'
shape "L10/{meetingId}/attendees shape" L10/$M0/attendees 'assert len(d) >= 5 and all("Id" in a and "Name" in a for a in d) and any("ImageUrl" not in a for a in d)'
shape "meeting todos leave closed ones out" L10/$M0/todos 'assert d and all(not t["Complete"] for t in d) and any(t["Id"] < 0 and t["TodoType"] == "Milestone" for t in d)'
shape "meeting todos with include_closed (any case)" "L10/$M0/todos?include_closed=true" '
assert any(t["Complete"] and t["CompleteTime"] and t["CloseTime"] for t in d)
for t in d:
    assert t["Owner"] is not None and t["Owner"]["Id"]
    assert {"Id","Name","DetailsUrl","DueDate","CreateTime","CompleteTime","Complete","Origin","OriginId","Owner","TodoType"} <= set(t)
assert any(len(t["Name"]) > 30000 for t in d)
assert any(t["Name"] == "Fix \"quotes\"\tand\nnewlines \\ back\\slash \\N end" for t in d)
dates = [t[k] for t in d for k in ("DueDate","CreateTime","CompleteTime","CloseTime") if k in t]
assert "" in dates and None in dates and "2024-12-31" in dates
assert any(x and x.endswith("Z") for x in dates) and any(x and len(x) == 19 for x in dates)
assert any(x and ".123" in x for x in dates) and any(x and re.search(r"\.\d{7}", x) for x in dates)
assert any("CloseTime" not in t for t in d) and any("Type" in t and "Key" in t and isinstance(t.get("Details"), dict) for t in d)
'
shape "measurables shape (dividers, null target)" L10/$M0/measurables '
assert any(m["Id"] is None and m["IsDivider"] for m in d)
real = [m for m in d if m["Id"] is not None and m["Name"] != ""]
assert any(m["Target"] is None for m in real)
assert all(m["Owner"]["Id"] and m["Direction"] and m["Modifiers"] for m in real)
'
shape "measurables of meeting 2 (empty-name divider)" L10/$M1/measurables 'assert any(m["Id"] is not None and m["Name"] == "" for m in d) and any(m["Id"] == 300000000 for m in d)'
shape "scorecard/meeting shape" scorecard/meeting/$M0 '
s = d["Scores"]
assert s and "Measurables" in d
assert any(x["Measured"] is None for x in s) and any(x["Target"] is None for x in s)
assert all(re.fullmatch(r"\d{4}-W\d\d", x["Week"]) and isinstance(x["ForWeek"], int) for x in s)
assert any(x["DateEntered"] == "" for x in s) and any(x["DateEntered"] is None for x in s)
'
shape "scorecard/user shape" scorecard/user/1000001 'assert d["Scores"] and all(x["AccountableUserId"] == 1000001 for x in d["Scores"])'
shape "todo/user shape (personal todos)" todo/user/$U0 '
assert any(t["TodoType"] == "Personal" and t["Origin"] == "Individual" and t["OriginId"] is None for t in d)
assert any(t["OriginId"] for t in d) and all(not t["Complete"] for t in d)
'
shape "todo/{id} shape" todo/100000000 'assert d["Id"] == 100000000 and d["Name"] == "Ship v2\x00 release"'
shape "todo/{id} of a milestone" todo/-100000008 'assert d["TodoType"] == "Milestone"'
shape "weeks/current shape" weeks/current 'assert isinstance(d["ForWeekNumber"], int) and d["LocalDate"]["Date"] and isinstance(d["ForWeek"], str)'
check "paths are case-insensitive" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/API/V1/l10/$M0/TODOS)\" = 200 ]"

# ---- the mirror a client computes from the API equals /__expect ----
check "client mirror from the API equals /__expect" python3 "$T/client.py" "$P" "$KEY"

# ---- stats ----
check "stats count requests" sh -c "
curl -s -X POST http://127.0.0.1:$P/__reset >/dev/null &&
for i in 1 2 3; do curl -s -o /dev/null -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine; done &&
curl -s -o /dev/null -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/L10/$M0/todos &&
curl -s -o /dev/null http://127.0.0.1:$P/api/v1/users/mine &&
curl -s http://127.0.0.1:$P/__stats > '$T/stats.json' &&
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s[\"total\"] == 5, s
assert s[\"endpoints\"][\"users/mine\"] == 4 and s[\"endpoints\"][\"L10/{id}/todos\"] == 1, s
assert s[\"status\"] == {\"200\": 4, \"401\": 1}, s
assert s[\"inflight\"] == 0 and s[\"peak_inflight\"] >= 1
assert set(s[\"faults\"]) == {\"429\", \"5xx\", \"reset\", \"truncate\", \"stall\"}
' '$T/stats.json'"

# ---- mutation ----
curl -s "http://127.0.0.1:$P/__expect" >"$T/before.json"
check "POST /__mutate answers the generation" sh -c "curl -s -X POST http://127.0.0.1:$P/__mutate | grep -q '\"generation\":1'"
curl -s "http://127.0.0.1:$P/__expect" >"$T/after1.json"
check "mutation changes /__expect" py '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ids = lambda d, t: {r["id"] for r in d[t]}
assert ids(a, "users") - ids(b, "users"), "no user removed"
assert ids(b, "users") - ids(a, "users"), "no user added"
assert ids(a, "todos") - ids(b, "todos") and ids(b, "todos") - ids(a, "todos")
assert ids(a, "scores") - ids(b, "scores") and ids(b, "scores") - ids(a, "scores")
ua = {r["id"]: r for r in a["users"]}
assert any(r["id"] in ua and r["name"] != ua[r["id"]]["name"] for r in b["users"]), "no rename"
ta = {r["id"]: r for r in a["todos"]}
assert any(r["id"] in ta and r["is_complete"] and not ta[r["id"]]["is_complete"] for r in b["todos"]), "none completed"
sa = {r["id"]: r for r in a["scores"]}
assert any(r["id"] in sa and r["value"] != sa[r["id"]]["value"] for r in b["scores"]), "no score changed"
assert set(map(tuple, (sorted(r.items()) for r in b["meeting_attendees"]))) != set(map(tuple, (sorted(r.items()) for r in a["meeting_attendees"])))
' "$T/before.json" "$T/after1.json"
curl -s -X POST "http://127.0.0.1:$P/__mutate" >/dev/null
check "client mirror equals /__expect after mutation" python3 "$T/client.py" "$P" "$KEY"
check "--mutate 2 --expect equals two POST /__mutate" sh -c "'$BLOOMSIM' --mutate 2 --expect '$T/m2.json' && curl -s http://127.0.0.1:$P/__expect > '$T/after2.json' && cmp -s '$T/m2.json' '$T/after2.json'"

# ---- faults (run time, via /__faults) ----
faults() { curl -s -X POST -d "$1" "http://127.0.0.1:$P/__faults" >/dev/null; }
NOFAULT='{"429":0,"5xx":0,"reset":0,"truncate":0,"stall":0,"after":0}'
faults '{"429":1}'
check "fault 429 has Retry-After" sh -c "curl -s -D '$T/h429' -o /dev/null -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine; grep -q '^HTTP/1.1 429' '$T/h429' && grep -qi '^Retry-After: 1' '$T/h429'"
faults "$NOFAULT"; faults '{"5xx":1}'
check "fault 5xx" sh -c "c=\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine); case \$c in 500|502|503) true;; *) echo \$c; false;; esac"
faults "$NOFAULT"; faults '{"reset":1}'
check "fault reset closes the connection" sh -c "curl -s -o /dev/null -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine; rc=\$?; [ \$rc = 52 ] || [ \$rc = 56 ] || { echo rc=\$rc; false; }"
faults "$NOFAULT"; faults '{"truncate":1}'
check "fault truncate sends bad json with 200" sh -c "[ \"\$(curl -s -o '$T/trunc' -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/L10/$M0/todos)\" = 200 ] && ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' '$T/trunc' 2>/dev/null"
faults "$NOFAULT"; faults '{"stall":1,"stall_ms":4000}'
check "fault stall outlasts the client timeout" sh -c "curl -s -o /dev/null --max-time 1 -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine; [ \$? = 28 ]"
faults "$NOFAULT"; faults '{"429":1,"after":3}'
check "faults start after N requests" sh -c "
for i in 1 2 3; do [ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine)\" = 200 ] || exit 1; done
[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$P/api/v1/users/mine)\" = 429 ]"
faults "$NOFAULT"
check "fault counters in /__stats" sh -c "curl -s http://127.0.0.1:$P/__stats | python3 -c '
import json, sys
f = json.load(sys.stdin)[\"faults\"]
assert all(f[k] >= 1 for k in (\"429\", \"5xx\", \"reset\", \"truncate\", \"stall\")), f
'"
check "bad /__faults body is refused" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{\"429\":5}' http://127.0.0.1:$P/__faults)\" = 400 ]"

# ---- faults from the command line ----
start cli --fault-429 1 --retry-after 7 --fault-after 1 >/dev/null
check "cli --fault-429 --retry-after --fault-after" sh -c "
[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $KEY' http://127.0.0.1:$PORT_cli/api/v1/users/mine)\" = 200 ] &&
curl -s -D '$T/hcli' -o /dev/null -H 'Authorization: Bearer $KEY' http://127.0.0.1:$PORT_cli/api/v1/users/mine &&
grep -q '^HTTP/1.1 429' '$T/hcli' && grep -qi '^Retry-After: 7' '$T/hcli'"

# ---- paging ----
start paged --page-size 5 >/dev/null
PP=$PORT_paged
check "paging: default page size, slices, past the end" sh -c "
curl -s -H 'Authorization: Bearer $KEY' 'http://127.0.0.1:$PP/api/v1/search/all?term=%25' > '$T/p1' &&
curl -s -H 'Authorization: Bearer $KEY' 'http://127.0.0.1:$PP/api/v1/search/all?term=%25&page=2&pageSize=7' > '$T/p2' &&
curl -s -H 'Authorization: Bearer $KEY' 'http://127.0.0.1:$PP/api/v1/search/all?term=%25&page=999' > '$T/p3' &&
curl -s -H 'Authorization: Bearer $KEY' 'http://127.0.0.1:$PP/api/v1/search/all?term=%25&pageSize=100000' > '$T/pall' &&
python3 -c '
import json, sys
p1, p2, p3, whole = (json.load(open(f)) for f in sys.argv[1:5])
assert len(whole) > 20
assert p1 == whole[:5], len(p1)
assert p2 == whole[7:14]
assert p3 == []
' '$T/p1' '$T/p2' '$T/p3' '$T/pall'"
check "paging applies to meeting todos" sh -c "
curl -s -H 'Authorization: Bearer $KEY' 'http://127.0.0.1:$PP/api/v1/L10/$M0/todos?INCLUDE_CLOSED=true&PAGE=2&PAGESIZE=3' | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d) == 3 and d[0][\"Id\"] == 100000003, d[0][\"Id\"]
'"

# ---- latency and concurrency ----
start slow --latency-ms 300 >/dev/null
check "latency: 20 parallel requests overlap (peak_inflight >= 10)" sh -c "
start=\$(date +%s%N)
for i in \$(seq 1 20); do curl -s -o /dev/null -H 'Authorization: Bearer $KEY' http://127.0.0.1:$PORT_slow/api/v1/users/mine & done; wait
ms=\$(( (\$(date +%s%N) - start) / 1000000 ))
[ \$ms -ge 300 ] && [ \$ms -lt 3000 ] || { echo elapsed \$ms ms; exit 1; }
curl -s http://127.0.0.1:$PORT_slow/__stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s[\"total\"] == 20 and s[\"peak_inflight\"] >= 10 and s[\"inflight\"] == 0, s
'"

# ---- clean shutdown, with a stalled request pending ----
faults '{"stall":1,"stall_ms":60000}'
curl -s -o /dev/null --max-time 20 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$P/api/v1/users/mine" &
CURLPID=$!
sleep 0.3
shutdown_ok() {
	kill -TERM "$PID_main" || return 1
	local i
	for i in $(seq 1 50); do
		if ! kill -0 "$PID_main" 2>/dev/null; then
			wait "$PID_main"
			return $?
		fi
		sleep 0.1
	done
	echo "still running after 5 s"
	return 1
}
check "SIGTERM shuts down cleanly with a suspended request" shutdown_ok
wait "$CURLPID" 2>/dev/null

exit $FAILED
