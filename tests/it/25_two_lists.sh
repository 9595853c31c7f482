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
start_body_server "$state" <<'PY' || exit 1
import time

def headline():
    return {"Id": 700, "Name": "h", "Owner": {"Id": 1}, "CreateTime": "2024-06-01T10:00:00Z",
            "Archived": state() == "true", "Origin": "W", "OriginId": 5}

def body(path):
    if path.endswith("/L10/5/headlines"):
        return [headline()]
    if path.endswith("/headline/users/1"):
        time.sleep(1.5)  # the meeting's list answers first
        return [headline()]
    return None  # the rest of one_meeting_org (body_server.py)
PY
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
