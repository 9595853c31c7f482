#!/bin/bash
# Paging: where list endpoints answer pages (bloomsim --page-size, api.page_size),
# bloomsync pages through them and the mirror is the same as from whole arrays.
. "$(dirname "$0")/lib.sh"

new_db paging21 || exit 1
# 7 does not divide the list sizes, and some lists are shorter than a page
start_sim --page-size 7 --latency-ms 2 || exit 1
write_conf "$TEST_TMP/p.conf" "page_size = 7;"
"$BLOOMSYNC" -c "$TEST_TMP/p.conf" sync 2>"$TEST_TMP/sync.err"
expect_eq "a paged sync exits 0" $? 0
sim_get /__expect >"$TEST_TMP/expect.json"
chmod 644 "$TEST_TMP/expect.json"
check "the paged mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/expect.json"
sim_get /__stats >"$TEST_TMP/stats.json"
users=$(q "SELECT count(*) FROM bloom.users")
pages=$(json_get "$TEST_TMP/stats.json" 'd["endpoints"]["search/all"]')
# ceil((users + non-user rows) / 7) pages, the last one short or empty
check "search/all was read page by page ($pages pages for $users users)" test "$pages" -ge $(((users + 6) / 7))
reqs=$(q "SELECT sum(requests) FROM bloom.sync_run_streams")
total=$(json_get "$TEST_TMP/stats.json" 'd["total"]')
expect_eq "every page request is counted in the run's requests" "$reqs" "$total"

# without api.page_size the same server answers page 1 only: a client that does
# not page would miss rows, so the test above is meaningful
new_db paging21b || exit 1
write_conf "$TEST_TMP/np.conf"
"$BLOOMSYNC" -c "$TEST_TMP/np.conf" sync 2>/dev/null
n=$(q "SELECT count(*) FROM bloom.users")
check "an unpaged client sees only the first page ($n users)" test "$n" -le 7

# a server that ignores paging (bloomsim without --page-size sends whole
# arrays) while api.page_size is set: a list longer than a page, or a page
# that repeats the one before, is the last; the sync once asked page after
# page for ever, with memory growing. page_size is the users list's length,
# so that list's second page repeats its first and other lists are longer.
stop_sim "$SIM_PID"
start_sim || exit 1
new_db paging21c || exit 1
len=$(curl -sf -H "Authorization: Bearer $KEY" "$SIM_API/search/all" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
write_conf "$TEST_TMP/ig.conf" "page_size = $len;"
timeout 30 "$BLOOMSYNC" -c "$TEST_TMP/ig.conf" sync 2>"$TEST_TMP/ig.err"
expect_eq "a paged sync against a server that ignores paging exits 0" $? 0
sim_get /__expect >"$TEST_TMP/ig.json"
chmod 644 "$TEST_TMP/ig.json"
check "its mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/ig.json"
sim_get /__stats >"$TEST_TMP/ig_stats.json"
expect_eq "the users list ($len elements, one page's worth) was asked twice by the sync" \
	"$(json_get "$TEST_TMP/ig_stats.json" 'd["endpoints"]["search/all"] - 1')" 2
check "the log says the API seems to ignore paging" grep -q "repeats page 1: the API seems to ignore paging" "$TEST_TMP/ig.err"
# every other list was asked once: as many requests as an unpaged sync, plus
# one per repeated page
paged=$(q "SELECT sum(requests) FROM bloom.sync_run_streams")
new_db paging21d || exit 1
write_conf "$TEST_TMP/unpaged.conf"
"$BLOOMSYNC" -c "$TEST_TMP/unpaged.conf" sync 2>/dev/null
unpaged=$(q "SELECT sum(requests) FROM bloom.sync_run_streams")
repeats=$(grep -c "repeats page" "$TEST_TMP/ig.err")
expect_eq "its requests ($paged) are an unpaged sync's ($unpaged) plus one per repeated page ($repeats)" \
	"$paged" "$((unpaged + repeats))"

finish
