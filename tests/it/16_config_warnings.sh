#!/bin/bash
# Warnings found while the config is read (a file others may read that holds
# the key, a key that overrides a username) come out once the log is set up
# from that config: in its log.format (or --log-format), and not at all
# under a log.level that leaves warnings out. -q keeps them: it means
# "warnings and errors only".
. "$(dirname "$0")/lib.sh"

new_db warn16 || exit 1
# migrate reads the config and the database, never the API: no simulator.
SIM_API="http://127.0.0.1:9/api/v1"
conf="$TEST_TMP/w.conf"

# w_conf LOG_GROUP: the config, readable by others, with a key and a username.
w_conf() {
	write_conf "$conf" "username = \"bot@example.com\";"
	sed -i "s/^log = .*/$1/" "$conf"
	chmod 644 "$conf"
}

# all_json FILE: 0 when every line of FILE is a JSON object.
all_json() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    assert isinstance(json.loads(line), dict), line
' "$1" 2>/dev/null
}

# json_warnings FILE: the msg of every JSON warn line of FILE, one a line.
json_warnings() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if isinstance(d, dict) and d.get("level") == "warn":
        print(d["msg"])
' "$1"
}

w_conf 'log = { level = "info"; };'
"$BLOOMSYNC" -c "$conf" migrate >/dev/null 2>"$TEST_TMP/text.err"
expect_eq "migrate with a readable config exits 0" $? 0
check "text: the readable-file warning is a warn line" \
	grep -q " warn .*w.conf is readable by group or others" "$TEST_TMP/text.err"
check "text: the key-wins warning names what is ignored" \
	grep -q " warn .*the key is used and the username is ignored" "$TEST_TMP/text.err"
check "text: the key is not in the warnings" bash -c "! grep -qF -- '$KEY' '$TEST_TMP/text.err'"

w_conf 'log = { level = "info"; format = "json"; };'
"$BLOOMSYNC" -c "$conf" migrate >/dev/null 2>"$TEST_TMP/json.err"
expect_eq "migrate with log.format json exits 0" $? 0
check "log.format json: every line on stderr is JSON, the warnings too" all_json "$TEST_TMP/json.err"
expect_eq "log.format json: both warnings are JSON warn lines" \
	"$(json_warnings "$TEST_TMP/json.err" | grep -c 'readable by group or others\|the key is used')" 2

w_conf 'log = { level = "info"; };'
"$BLOOMSYNC" -c "$conf" --log-format json migrate >/dev/null 2>"$TEST_TMP/opt.err"
check "--log-format json: every line on stderr is JSON" all_json "$TEST_TMP/opt.err"
expect_eq "--log-format json: both warnings are JSON warn lines" \
	"$(json_warnings "$TEST_TMP/opt.err" | grep -c 'readable by group or others\|the key is used')" 2

w_conf 'log = { level = "error"; };'
"$BLOOMSYNC" -c "$conf" migrate >/dev/null 2>"$TEST_TMP/error.err"
expect_eq "migrate with log.level error exits 0" $? 0
expect_eq "log.level error: no warning" "$(grep -c ' warn ' "$TEST_TMP/error.err")" 0

w_conf 'log = { level = "debug"; };'
"$BLOOMSYNC" -c "$conf" -q migrate >/dev/null 2>"$TEST_TMP/quiet.err"
expect_eq "-q: both warnings, as warnings and errors are what -q keeps" \
	"$(grep -c ' warn .*\(readable by group or others\|the key is used\)' "$TEST_TMP/quiet.err")" 2
expect_eq "-q: no info or debug line (over log.level debug)" \
	"$(grep -c ' \(info\|debug\) ' "$TEST_TMP/quiet.err")" 0

finish
