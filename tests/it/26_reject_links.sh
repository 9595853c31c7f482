#!/bin/bash
# A measurable or a goal the mapping rejects writes no link row (its
# meeting_measurables row, its goal_meetings rows), with its key or without:
# the complete run must not mark those link rows deleted while the API
# still has them, and it must not forget them on the run after (the list is
# read again, not skipped as unchanged). Once the records read clean, the
# link rows are live and deletes go on.
. "$(dirname "$0")/lib.sh"

new_db links26 || exit 1
state="$TEST_TMP/state"
echo good >"$state"
start_body_server "$state" <<'PY' || exit 1
def body(path):
    s = state()
    if path.endswith("/L10/5/measurables"):
        # keyed: a Target that is not a number; unkeyed: an Id that is not one
        mid = "30" if s == "unkeyed" else 30
        target = "x" if s.startswith("keyed") else 5
        return [{"Id": mid, "Name": "m", "Target": target}, {"Id": 31, "Name": "n", "Target": 1}]
    if path.endswith("/rocks/user/1"):
        gid = "40" if s == "unkeyed" else 40
        due = "not a date" if s.startswith("keyed") else None
        goals = [{"Id": gid, "Name": "g", "Complete": False, "DueDate": due, "Owner": {"Id": 1},
                  "Origins": [{"Id": 5, "Name": "W"}]}]
        # "keyed, other change": another goal comes and goes, so that the
        # run has bodies to read and could mark rows deleted
        if s == "keyed, other change":
            goals.append({"Id": 41, "Name": "h", "Complete": False, "Owner": {"Id": 1}})
        return goals
    return None  # the rest of one_meeting_org (body_server.py)
PY
conf="$TEST_TMP/r.conf"
write_conf "$conf"
echo 'sync = { streams = ["users", "meetings", "scorecard", "goals"]; };' >>"$conf"
links_deleted() {
	q "SELECT (SELECT count(*) FROM bloom.meeting_measurables WHERE deleted_at IS NOT NULL)
	        + (SELECT count(*) FROM bloom.goal_meetings WHERE deleted_at IS NOT NULL)"
}

"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run1.err"
expect_eq "the first sync exits 0" $? 0
expect_eq "it stored the two measurables' links and the goal's" \
	"$(q "SELECT (SELECT count(*) FROM bloom.meeting_measurables) || '/' || (SELECT count(*) FROM bloom.goal_meetings)")" "2/1"

for s in keyed "keyed, other change" unkeyed; do
	echo "$s" >"$state"
	"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run-$s.err"
	expect_eq "$s: the sync exits 0" $? 0
	expect_eq "$s: the measurable and the goal are rejected" \
		"$(q "SELECT count(*) FROM bloom.rejected_records WHERE run_id = (SELECT max(id) FROM bloom.sync_runs)")" 2
	expect_eq "$s: no link row of theirs is marked deleted" "$(links_deleted)" 0
done
grep -q "no row is marked deleted in meeting_measurables this time" "$TEST_TMP/run-keyed.err"
check "the log says why no meeting_measurables row was marked deleted" test $? -eq 0

echo gone >"$state"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run-good.err"
expect_eq "read clean again, the sync exits 0" $? 0
expect_eq "the links are live, and goal 41, gone upstream, is marked deleted" \
	"$(links_deleted) $(q "SELECT string_agg(id::text, ',') FROM bloom.goals WHERE deleted_at IS NOT NULL")" "0 41"

finish
