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
expect_eq "and no page but the first counts as a retry (no fault was served)" \
	"$(q "SELECT sum(retries) FROM bloom.sync_run_streams")" 0

# without api.page_size the same server answers page 1 only: a client that does
# not page would miss rows, so the test above is meaningful
new_db paging21b || exit 1
write_conf "$TEST_TMP/np.conf"
"$BLOOMSYNC" -c "$TEST_TMP/np.conf" sync 2>/dev/null
n=$(q "SELECT count(*) FROM bloom.users")
check "an unpaged client sees only the first page ($n users)" test "$n" -le 7

# a server that ignores paging (bloomsim without --page-size sends whole
# arrays) while api.page_size is set: page 2 repeats page 1, and whether
# the server sent the whole list or only its first page cannot be told, so
# the sync fails with a hint rather than take a list that may be cut short
# (which a complete run would turn into rows marked deleted). It once asked
# page after page for ever, with memory growing.
stop_sim "$SIM_PID"
start_sim || exit 1
new_db paging21c || exit 1
write_conf "$TEST_TMP/ig.conf" "page_size = 5;"
timeout 30 "$BLOOMSYNC" -c "$TEST_TMP/ig.conf" sync 2>"$TEST_TMP/ig.err"
expect_eq "a paged sync against a server that ignores paging exits 1" $? 1
check "the error says the API ignores paging and what to set" \
	grep -q "page 2 repeats page 1: the API ignores paging (set api.page_size = 0)" "$TEST_TMP/ig.err"
sim_get /__stats >"$TEST_TMP/ig_stats.json"
expect_eq "the users list was asked twice" "$(json_get "$TEST_TMP/ig_stats.json" 'd["endpoints"]["search/all"]')" 2
expect_eq "the run is recorded failed, nothing marked deleted" \
	"$(q "SELECT status || '/' || deleted_rows FROM bloom.sync_runs")" failed/0

# a server whose least page size is larger than asked (pages of 8 when 5 are
# asked for): a page longer than asked is not the last; the list is read to
# its first short page and the mirror is whole
stop_sim "$SIM_PID"
start_sim --page-size 8 --least-page-size 8 || exit 1
new_db paging21d || exit 1
write_conf "$TEST_TMP/min.conf" "page_size = 5;"
timeout 60 "$BLOOMSYNC" -c "$TEST_TMP/min.conf" sync 2>"$TEST_TMP/min.err"
expect_eq "a sync asking pages of 5 from a server that pages by 8 exits 0" $? 0
sim_get /__expect >"$TEST_TMP/min.json"
chmod 644 "$TEST_TMP/min.json"
check "its mirror equals the expected mirror" mirror_equals bloom "$TEST_TMP/min.json"

finish
