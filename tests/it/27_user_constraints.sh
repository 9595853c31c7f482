#!/bin/bash
# What users add to mirror tables (a CHECK, a deferred foreign key, a
# trigger) may refuse a row: the row is rejected with its id, or its delete
# held back, and the run goes on; it never fails every run. Served by the
# small fixed-body server, selected by a state file.
. "$(dirname "$0")/lib.sh"

new_db constraints27 || exit 1
state="$TEST_TMP/state"
echo first >"$state"
start_body_server "$state" <<'PY' || exit 1
def body(path):
    if path.endswith("/search/all"):
        return [{"Id": 1, "Name": "Ann", "Email": "ann@x.io", "ResultType": "User"}]
    if path.endswith("/todo/user/1"):
        todos = [{"Id": 10, "Name": "Call", "Complete": False}, {"Id": 11, "Name": "Write", "Complete": True},
                 {"Id": 12, "Name": "Plan", "Complete": False}]
        if state() == "refused name":
            todos[1]["Name"] = "refused"
            todos.append({"Id": 13, "Name": "New", "Complete": False})
        if state() == "unknown owner":
            todos.append({"Id": 14, "Name": "A stranger's", "Complete": False, "Owner": {"Id": 99}})
        if state() == "12 gone":
            todos = todos[:2]
        return todos
    if "/scorecard/" in path:
        return {"Scores": []}
    return []
PY
conf="$TEST_TMP/c.conf"
write_conf "$conf"
echo 'sync = { streams = ["users", "meetings", "todos"]; };' >>"$conf"
last_run="(SELECT max(id) FROM bloom.sync_runs)"

"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run1.err"
expect_eq "the first sync exits 0" $? 0
q "ALTER TABLE bloom.todos ADD CONSTRAINT no_refused CHECK (name <> 'refused')" >/dev/null

echo "refused name" >"$state"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run2.err"
expect_eq "a sync with a todo the user's CHECK refuses exits 0" $? 0
expect_eq "the refused todo is rejected with its id" \
	"$(q "SELECT record_id FROM bloom.rejected_records WHERE stream = 'todos' AND run_id = $last_run")" 11
expect_eq "it keeps its row as it was; the new todo is stored" \
	"$(q "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM bloom.todos")" "10=Call,11=Write,12=Plan,13=New"
expect_eq "the run counts each todo once: 1 inserted, 2 unchanged, 1 rejected" \
	"$(q "SELECT inserted || ' ' || updated || ' ' || unchanged || ' ' || rejected FROM bloom.sync_run_streams
	  WHERE stream = 'todos' AND run_id = $last_run")" "1 0 2 1"

q "ALTER TABLE bloom.todos ADD CONSTRAINT todos_owner FOREIGN KEY (owner_id) REFERENCES bloom.users (id)
   DEFERRABLE INITIALLY DEFERRED" >/dev/null
echo "unknown owner" >"$state"
for n in 3 4; do
	"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run$n.err"
	expect_eq "sync $n, a todo the deferred foreign key refuses, exits 0" $? 0
	expect_eq "sync $n rejects that todo with its id" \
		"$(q "SELECT string_agg(record_id, ',') FROM bloom.rejected_records WHERE run_id = $last_run")" 14
done
q "ALTER TABLE bloom.todos DROP CONSTRAINT todos_owner" >/dev/null

q "CREATE FUNCTION bloom.keep_12() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
   IF NEW.id = 12 AND NEW.deleted_at IS NOT NULL THEN RAISE EXCEPTION 'todo 12 stays'; END IF; RETURN NEW; END \$\$;
   CREATE TRIGGER keep_12 BEFORE UPDATE ON bloom.todos FOR EACH ROW EXECUTE FUNCTION bloom.keep_12()" >/dev/null
echo "12 gone" >"$state"
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run5.err"
expect_eq "a sync whose delete a trigger refuses exits 0" $? 0
grep -q "no row is marked deleted in todos this time: .*todo 12 stays" "$TEST_TMP/run5.err"
check "it says the todos' deletes were held, and why" test $? -eq 0
expect_eq "the run succeeded, its deletes marked as skipped" \
	"$(q "SELECT status || ' ' || deletes_skipped FROM bloom.sync_runs WHERE id = $last_run")" "succeeded true"
q "DROP TRIGGER keep_12 ON bloom.todos" >/dev/null
"$BLOOMSYNC" -c "$conf" sync 2>"$TEST_TMP/run6.err"
expect_eq "the next sync, nothing changed upstream, exits 0" $? 0
expect_eq "it marks todo 12 deleted: 10 and 11 are live, 12 and 13 (gone since sync 3) deleted" \
	"$(q "SELECT string_agg(id || ' ' || (deleted_at IS NULL), ',' ORDER BY id) FROM bloom.todos")" \
	"10 true,11 true,12 false,13 false"

finish
