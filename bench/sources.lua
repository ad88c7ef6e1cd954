-- Benchmarks of sources, read through phonehome.sources as the host reads them: how long
-- the loop is blocked while a slow SQLite query, a slow PostgreSQL query and a slow HTTP
-- answer are read; what a SQLite source adds to its query's own time; what an HTTP JSON
-- source adds to libcurl's request. Run by `make bench`; prints figures, asserts nothing.
local build = arg[1] or "build"
local runs = tonumber(arg[2] or 50)
package.path = "bench/?.lua;spec/?.lua;" .. package.path
local util = require("util")
util.paths(build)

local h = require("support.helper")
h.build = build
local postgres = require("support.postgres")
local core = require("phonehome.core")
local async = require("phonehome.base.async")
local sources = require("phonehome.sources")

local sh, median = util.sh, util.median
local tmp = util.tmpdir()

-- SQLite counting to 7 million in a recursive CTE: a second or two of one core.
local SLOW_SQLITE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
    .. " WHERE x < 7000000) SELECT count(*) AS n FROM c"
-- half of a million rows, counted on their index
local COUNT = "SELECT count(*) AS n FROM t WHERE k >= 500000"
local TARGET_GAP_MS = 5

local function sql(name, database, query)
    return { name = name, kind = "sql", database = database, queries = { q = query },
             timeout = 10000 }
end

local function http(name, url)
    return { name = name, kind = "http", url = url, timeout = 10000 }
end

-- The loop thread's time on a CPU and waiting for one (runnable while another thread or
-- process holds every CPU), in ms, as the scheduler counts them.
local function sched()
    local f = assert(io.open("/proc/thread-self/schedstat"))
    local run, wait = f:read("n", "n")
    f:close()
    return run / 1e6, wait / 1e6
end

-- Runs fn in a coroutine on the loop, a 1 ms timer ticking meanwhile, until fn returns:
-- { gap, waited, busy } in ms: the longest gap between two ticks and how much of it the
-- loop thread spent waiting for a CPU, and the most CPU time the loop thread used within
-- one gap (the loop's own work, blocking it); then what fn returned.
local function ticking(fn)
    local t, result = { gap = 0, waited = 0, busy = 0 }, nil
    local handle
    local last, run, wait = core.monotonic(), sched()
    local function tick()
        local now = core.monotonic()
        local r, w = sched()
        if now - last > t.gap / 1000 then t.gap, t.waited = (now - last) * 1000, w - wait end
        t.busy = math.max(t.busy, r - run)
        last, run, wait = now, r, w
        handle = core.timer(1, tick)
    end
    handle = core.timer(1, tick)
    async.spawn(function()
        result = fn()
        handle:close()
        core.stop()
    end)
    core.run()
    return t, result
end

-- Runs fn in a coroutine on the loop until it returns; what it returned.
local function on_loop(fn)
    local result
    async.spawn(function()
        result = fn()
        core.stop()
    end)
    core.run()
    return result
end

-- A JSON answer of about 10 KiB, from the specs' endpoint serving a product's API.
local root = tmp .. "/api"
sh("mkdir -p " .. root)
local items = {}
for i = 1, 110 do
    items[i] = string.format('{"id":%d,"name":"node-%03d","role":"replica","healthy":true,'
        .. '"lag_ms":%d,"version":"24.10.%d"}', i, i, i * 37 % 1000, i % 7)
end
local json = '{"cluster":"bench","nodes":[' .. table.concat(items, ",") .. "]}"
h.write(root .. "/info.json", json)
local ep = h.endpoint("serve:" .. root)
local url = ep.url .. "/info.json"
local pg = postgres.start()

-- 1. the loop while slow sources are read, each alone and the three at once
local function blocked()
    local empty = tmp .. "/empty.db"
    sh("sqlite3 " .. empty .. " 'CREATE TABLE x(y)'")
    local slow = {
        sqlite = { sql("sqlite", empty, SLOW_SQLITE) },
        postgres = { sql("postgres", pg.url, "SELECT pg_sleep(1)") },
        http = { http("http", url) },
    }
    slow.all = { slow.sqlite[1], slow.postgres[1], slow.http[1] }
    -- libcurl, libpq and SQLite are loaded on first use, once in a process's life: before
    on_loop(function()
        return sources.read_all({ sql("w1", pg.url, "SELECT 1"), http("w2", url),
                                  sql("w3", empty, "SELECT 1") }, 30)
    end)
    local rows = { { name = "idle loop, 1 s", t = ticking(function() async.sleep(1) end) } }
    local names = { sqlite = "SQLite recursive CTE", postgres = "PostgreSQL pg_sleep(1)",
                    http = "HTTP answering after 1 s", all = "the three at once" }
    for _, which in ipairs({ "sqlite", "postgres", "http", "all" }) do
        if which == "http" or which == "all" then
            -- the server stopped, and let go on a second later: it answers a second late
            sh("kill -STOP " .. ep.pid .. "; (sleep 1; kill -CONT " .. ep.pid
                .. ") >/dev/null 2>&1 &")
        end
        local t, results = ticking(function() return sources.read_all(slow[which], 30) end)
        local took = 0
        for name, r in pairs(results) do
            if not r.ok then error(name .. ": " .. r.error) end
            took = math.max(took, r.ms)
        end
        rows[#rows + 1] = { name = names[which], t = t, took = took }
    end
    print("sources: the loop while slow sources are read, a 1 ms timer ticking: its longest "
        .. "gap between ticks,")
    print("  how much of that gap the loop thread waited for a CPU (held by other threads and "
        .. "processes), and")
    print("  the most CPU time the loop thread used within one gap (its own work, blocking it)")
    print(string.format("  %-26s %12s %14s %12s %10s", "reading", "longest gap",
                        "waiting in it", "loop CPU", "read took"))
    for _, r in ipairs(rows) do
        print(string.format("  %-26s %9.2f ms %11.2f ms %9.2f ms", r.name, r.t.gap,
                            r.t.waited, r.t.busy)
            .. (r.took and string.format(" %8.2f s", r.took / 1000) or ""))
    end
    local all = rows[#rows].t
    print(string.format("  target < %d ms: longest gap %.2f× the target, loop CPU %.2f×",
                        TARGET_GAP_MS, all.gap / TARGET_GAP_MS, all.busy / TARGET_GAP_MS))
end

-- 2. a SQLite source against its query's own time in the sqlite3 shell
local function sqlite_count()
    local db = tmp .. "/count.db"
    h.write(tmp .. "/count.sql", [[
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000)
INSERT INTO t SELECT x, x * 7919 % 1000003, 'row ' || x FROM c;
CREATE INDEX t_k ON t(k);
]])
    sh("sqlite3 " .. db .. " < " .. tmp .. "/count.sql")
    local plan = sh("sqlite3 " .. db .. " 'EXPLAIN QUERY PLAN " .. COUNT .. "'")
        :match("(SEARCH[^\n]*)") or "NO INDEX USED"
    local shell, source, n = {}, {}, nil
    for i = 1, runs do
        -- a new process each time: its page cache starts empty, as a source's session's does
        local out = sh("printf '.timer on\\n" .. COUNT .. ";\\n' | sqlite3 " .. db)
        shell[i] = tonumber(out:match("Run Time: real ([%d%.]+)")) * 1000
        local r = on_loop(function() return sources.read(sql("count", db, COUNT), 30) end)
        if not r.ok then error(r.error) end
        source[i], n = r.ms, r.value.queries.q.rows[1].n
    end
    local a, b = median(source), median(shell)
    print(string.format("sources: SQLite count(*) of %d of 1,000,000 rows (%s), median of %d",
                        n, plan, runs))
    print(string.format("  source read %.2f ms   the query in the sqlite3 shell (.timer real) "
        .. "%.2f ms   %.2f×   target within 2×", a, b, a / b))
end

-- 3. an HTTP JSON source against curl's own time for the same request
local function http_json()
    local curl, source = {}, {}
    for i = 1, runs do
        curl[i] = tonumber(sh("curl -s -o /dev/null -w '%{time_total}' " .. url)) * 1000
        local r = on_loop(function() return sources.read(http("json", url), 30) end)
        if not r.ok then error(r.error) end
        source[i] = r.ms
    end
    local a, b = median(source), median(curl)
    print(string.format("sources: HTTP JSON of %d bytes from a local server, median of %d",
                        #json, runs))
    print(string.format("  source read %.2f ms   curl time_total %.2f ms   %.2f×   "
        .. "target within 2×", a, b, a / b))
end

local ok, err = xpcall(function()
    blocked()
    sqlite_count()
    http_json()
end, debug.traceback)
pg.stop()
ep.stop()
h.cleanup()
os.execute("rm -rf " .. tmp)
if not ok then error(err, 0) end
