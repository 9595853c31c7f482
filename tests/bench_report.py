#!/usr/bin/env python3
"""The table of `make bench`, from the raw figures tests/bench.sh recorded.

usage: bench_report.py RAW MACHINE_MD RESULTS_MD CONCURRENCY_DAT

RAW holds one "key value" line per measured figure (times in seconds, RSS in
KiB, CPU in clock ticks). Prints the table to stdout, writes it with the
machine description and the method to RESULTS_MD, and the achieved requests/s
per concurrency to CONCURRENCY_DAT (for gnuplot). Computes, never measures.
"""
import statistics
import sys

MIB = 1024.0


def load_raw(path):
    raw = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            raw[key] = value
    return raw


class Report:
    def __init__(self, raw):
        self.raw = raw
        self.rows = []  # (part, measure, figure, target, result)
        self.misses = 0

    def num(self, key):
        v = self.raw.get(key)
        return float(v) if v not in (None, "") else None

    def has(self, prefix):
        return self.num(prefix + ".wall") is not None and self.num(prefix + ".req") is not None

    def add(self, part, measure, figure, target="", ok=None):
        result = "" if ok is None else ("PASS" if ok else "MISS")
        if ok is False:
            self.misses += 1
        self.rows.append((part, measure, figure, target, result))

    def missing(self, part, measure):
        self.add(part, measure, "not measured (the run failed)", "", False)

    def floor(self, req, l_ms, c):
        """Little's law plus the producer's sequential depth (see METHOD)."""
        return req * (l_ms / 1000.0) / c + 2 * l_ms / 1000.0

    def cpu_us(self, prefix, req):
        user, sys_ = self.num(prefix + ".user"), self.num(prefix + ".sys")
        return (user + sys_) * 1e6 / req

    def ticks_us(self, prefix, what, req):
        return self.num("%s.%s_ticks" % (prefix, what)) / self.num("tick") * 1e6 / req

    def fetch(self, dat):
        l_ms = self.num("fetch.L")
        targets = {16: 0.90, 64: 0.80}
        points = []
        for c in [int(x) for x in self.raw.get("fetch.cs", "1 4 16 64").split()]:
            p = "fetch.%d" % c
            org = self.raw.get(p + ".org")
            name = "C=%d, L=%g ms%s: efficiency" % (c, l_ms, ", org " + org if org else "")
            if not self.has(p):
                self.missing("1 fetch", name)
                continue
            req, wall = self.num(p + ".req"), self.num(p + ".wall")
            fl = self.floor(req, l_ms, c)
            eff = fl / wall
            rps = req / wall
            points.append((c, rps))
            fig = "%.2f  (%d req in %.2f s = %.0f req/s; floor %.2f s; ideal %.0f req/s)" % (
                eff, req, wall, rps, fl, c / (l_ms / 1000.0))
            t = targets.get(c)
            self.add("1 fetch", name, fig, ">= %.2f" % t if t else "",
                     eff >= t if t else None)
        with open(dat, "w") as f:
            for c, rps in points:
                f.write("%d %.1f\n" % (c, rps))

    def cpu(self):
        runs = int(self.num("cpu.runs") or 0)
        done = ["cpu.%d" % i for i in range(1, runs + 1) if self.has("cpu.%d" % i)]
        c = self.num("cpu.C")
        if not done:
            self.missing("2 cpu", "L=0, C=%d: requests/s" % c)
            return None
        walls = sorted(done, key=lambda p: self.num(p + ".wall"))
        p = walls[len(walls) // 2]  # the median run by wall time
        req, wall = self.num(p + ".req"), self.num(p + ".wall")
        rps = req / wall
        self.add("2 cpu", "L=0, C=%d, medium org, fresh db: requests/s end to end" % c,
                 "%.0f  (%d req in %.2f s; median of %d runs: %s)" % (
                     rps, req, wall, len(done),
                     ", ".join("%.0f" % (self.num(q + ".req") / self.num(q + ".wall")) for q in done)),
                 ">= 10000", rps >= 10000)
        us_sync = self.cpu_us(p, req)
        us_sim = self.ticks_us(p, "sim", req)
        us_pg = self.ticks_us(p, "pg", req)
        ncpu = self.num("machine.nproc") or 2
        self.add("2 cpu", "  bloomsync CPU per request (user+sys)",
                 "%.0f us  (user %.2f s, sys %.2f s)" % (us_sync, self.num(p + ".user"), self.num(p + ".sys")))
        self.add("2 cpu", "  bloomsim CPU per request (apart)", "%.0f us" % us_sim)
        self.add("2 cpu", "  PostgreSQL CPU per request (apart)", "%.0f us" % us_pg)
        total = us_sync + us_sim + us_pg
        self.add("2 cpu", "  all three: CPU-bound ceiling on %d cores" % ncpu,
                 "%.0f us/req -> %.0f req/s at best" % (total, ncpu * 1e6 / total))
        steady = ["cpu.nochange.%d" % i for i in range(1, runs + 1) if self.has("cpu.nochange.%d" % i)]
        if steady:
            q = sorted(steady, key=lambda p: self.num(p + ".wall"))[len(steady) // 2]
            r2, w2 = self.num(q + ".req"), self.num(q + ".wall")
            rps2 = r2 / w2
            self.add("2 cpu", "L=0, C=%d, medium org, steady state (synced before, no change): requests/s" % c,
                     "%.0f  (%d req in %.2f s; median of %d runs: %s)" % (
                         rps2, r2, w2, len(steady),
                         ", ".join("%.0f" % (self.num(x + ".req") / self.num(x + ".wall")) for x in steady)),
                     ">= 10000", rps2 >= 10000)
            self.add("2 cpu", "  bloomsync / bloomsim / PostgreSQL CPU per request (user+sys)",
                     "%.0f / %.0f / %.0f us" % (self.cpu_us(q, r2), self.ticks_us(q, "sim", r2),
                                                self.ticks_us(q, "pg", r2)))
        else:
            self.missing("2 cpu", "L=0, C=%d, medium org, steady state" % c)
        return p

    def load(self):
        if not self.has("load.first") or self.num("load.rows") is None:
            self.missing("3 load", "initial load of the large org")
            return
        rows, wall = self.num("load.rows"), self.num("load.first.wall")
        req = self.num("load.first.req")
        sync_rps = rows / wall
        self.add("3 load", "large org (%s), L=0, C=%d: initial load rows/s" % (
                     self.raw.get("org.large", "?"), self.num("load.C") or 0),
                 "%.0f  (%d rows, %d req in %.2f s; bloomsync CPU %.1f s, PostgreSQL CPU %.1f s)" % (
                     sync_rps, rows, req, wall,
                     self.num("load.first.user") + self.num("load.first.sys"),
                     self.num("load.first.pg_ticks") / self.num("tick")))
        cw, cr = self.num("copy.wall"), self.num("copy.rows")
        if cw is None or cr is None:
            self.missing("3 load", "plain COPY into UNLOGGED tables")
        else:
            copy_rps = cr / cw
            self.add("3 load", "  plain COPY into UNLOGGED tables: rows/s",
                     "%.0f  (%d rows, %.0f MiB, in %.2f s)" % (copy_rps, cr, self.num("copy.bytes") / MIB / MIB, cw))
            ratio = sync_rps / copy_rps
            self.add("3 load", "  initial load / plain COPY", "%.2f" % ratio, ">= 0.50", ratio >= 0.5)
            iw = self.num("copy_idx.wall")
            if iw is not None:
                self.add("3 load", "  plain COPY into tables like the mirror's (logged, indexed): rows/s",
                         "%.0f  (in %.2f s; %.2f of the UNLOGGED COPY's rows/s; initial load / this: %.2f)" % (
                             cr / iw, iw, cw / iw, sync_rps / (cr / iw)))
        if self.has("load.second"):
            w2 = self.num("load.second.wall")
            self.add("3 load", "  no-change sync, L=0: time (first sync %.2f s)" % wall,
                     "%.2f s  (%d req, %.0f req/s; %.2fx the first)" % (
                         w2, self.num("load.second.req"), self.num("load.second.req") / w2, w2 / wall))
            writes = self.num("load.second.writes")
            self.add("3 load", "  no-change sync, L=0: rows written", "%d" % writes, "= 0", writes == 0)
        else:
            self.missing("3 load", "  no-change sync, L=0")
        if self.has("load.third"):
            l_ms, c = self.num("load.third.L"), self.num("load.third.C")
            req, w3 = self.num("load.third.req"), self.num("load.third.wall")
            fl = self.floor(req, l_ms, c)
            self.add("3 load", "  no-change sync, L=%g ms, C=%d: time / fetch floor" % (l_ms, c),
                     "%.2f  (%.2f s vs floor %.2f s; %d req)" % (w3 / fl, w3, fl, req),
                     "<= 1.20", w3 / fl <= 1.2)
            writes = self.num("load.third.writes")
            self.add("3 load", "  no-change sync, L=%g ms: rows written" % l_ms, "%d" % writes, "= 0", writes == 0)
        else:
            self.missing("3 load", "  no-change sync at a latency")

    def memory(self, cpu_run):
        c = self.num("mem.C")
        sizes = [("default org (no size flags)", "mem.default"),
                 ("medium org (%s)" % self.raw.get("org.medium", "?"), cpu_run),
                 ("10x medium (%s)" % self.raw.get("org.tenx", "?"), "mem.tenx")]
        rss = {}
        for name, p in sizes:
            if p is None or self.num(p + ".rss") is None:
                self.missing("4 memory", "peak RSS, " + name)
                continue
            kib = self.num(p + ".rss")
            rss[p] = kib
            self.add("4 memory", "peak RSS, %s, L=0, C=%d" % (name, c),
                     "%.1f MiB  (%d req, %.2f s)" % (kib / MIB, self.num(p + ".req"), self.num(p + ".wall")),
                     "<= 32 MiB", kib <= 32 * MIB)
        if cpu_run in rss and "mem.tenx" in rss:
            r = rss["mem.tenx"] / rss[cpu_run]
            self.add("4 memory", "  10x org vs medium org (peak RSS ratio)", "%.2f" % r,
                     "within 20%: 0.80..1.20", 0.8 <= r <= 1.2)

    def table(self):
        head = ("part", "measure", "figure", "target", "result")
        rows = [head] + self.rows
        w = [max(len(r[i]) for r in rows) for i in range(len(head))]
        out = []
        for k, r in enumerate(rows):
            out.append("| " + " | ".join(r[i].ljust(w[i]) for i in range(len(head))) + " |")
            if k == 0:
                out.append("|" + "|".join("-" * (w[i] + 2) for i in range(len(head))) + "|")
        return "\n".join(out) + "\n"


METHOD = """\
## Method

- Every figure comes from one run of `sh tests/bench.sh` on the machine above:
  a scratch PostgreSQL (`tests/pg.sh`: fsync off, unix socket) and bloomsim on
  the same cores as bloomsync. Every sync runs against a fresh database that
  `bloomsync migrate` prepared beforehand (not timed), except the no-change syncs.
- Requests are bloomsim's `/__stats` `total` for that sync (reset before it);
  wall time, user and system CPU and peak RSS of bloomsync are
  `/usr/bin/time -f '%U %S %e %M'` on the `bloomsync sync` process, so wall time
  is end to end (start, connect, fetch, load, summary).
- Fetch floor = requests x L / C + 2 x L. The first term is Little's law: C
  requests in flight, each held L by bloomsim. The second is the producer's
  sequential depth: three levels (users list -> each user's meeting list ->
  meeting details); the first level is one request that nothing can overlap
  (one L), and the last detail requests can start only after the last list
  that names them (one more L) -- so 2 x L beyond the Little's-law term.
  Latency has no jitter here, so L is exact. Efficiency = floor / wall time.
  C=1 runs on a quarter of the medium org unless BENCH_FULL=1 (one request
  after the other at 20 ms would take most of the bench's ten minutes; its
  requests/s and efficiency do not depend on the org's size).
- CPU per request: bloomsync's user+sys from /usr/bin/time; bloomsim's and
  PostgreSQL's from /proc/PID/stat (utime+stime; for PostgreSQL the postmaster,
  its reaped children -- the backends -- and its live children) before and after
  the sync, divided by that sync's requests. Part 2 runs the medium org five
  times on a fresh database (the initial load, where PostgreSQL's row writes
  dominate) and five times more on the database the last of them filled,
  with nothing changed upstream: the steady state of a periodic sync, where
  every body is fetched and found unchanged (not mapped, nothing staged).
  The 10,000 requests/s target is judged on each.
- Loader: rows = count(*) over the eleven mirror tables after the first sync of
  the large org; plain COPY = the same rows exported with
  `COPY (SELECT * FROM bloom.t) TO file`, then `\\copy` into
  `CREATE UNLOGGED TABLE (LIKE bloom.t)` (no indexes), all tables in one psql
  session, timed around it. The same files are then COPYed, the same way,
  into `CREATE TABLE (LIKE bloom.t INCLUDING ALL)`: logged and with the
  mirror's indexes, as the loader has to write them; that is the limit a
  loader of this schema can reach, and it is listed beside the target's.
  Rows written by a no-change sync =
  n_tup_ins + n_tup_upd + n_tup_del of the mirror tables (pg_stat_user_tables).
- The no-change sync is compared with the fetch floor at its own L and C
  (latency set on the running bloomsim with `POST /__faults`).
- Memory: the 10x org is compared with the medium org (the medium figure is
  the median run of part 2); the default org is listed for scale.
"""


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: bench_report.py RAW MACHINE_MD RESULTS_MD CONCURRENCY_DAT")
    raw_path, machine_path, results_path, dat_path = sys.argv[1:]
    rep = Report(load_raw(raw_path))
    rep.fetch(dat_path)
    cpu_run = rep.cpu()
    rep.load()
    rep.memory(cpu_run)
    table = rep.table()
    sys.stdout.write(table)
    summary = "%d targets missed" % rep.misses if rep.misses else "all targets met"
    print(summary)
    with open(machine_path) as f:
        machine = f.read()
    with open(results_path, "w") as f:
        f.write("# bloomsync benchmark (`make bench`)\n\n## Machine\n\n")
        f.write(machine)
        f.write("\n## Results\n\n")
        f.write(table)
        f.write("\n%s. Plot: `concurrency.png` (achieved requests/s against C, with the ideal C / L).\n\n" % summary)
        f.write(METHOD)


if __name__ == "__main__":
    main()
