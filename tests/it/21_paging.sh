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

finish
