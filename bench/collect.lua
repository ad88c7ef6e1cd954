-- Load run of `phonehome collect`: wrk's concurrent clients PUT Synapse reports over
-- loopback for a while; prints reports per second, latency percentiles, the collector's
-- peak RSS, and whether every answered report is in the database. Run by `make bench`.
local build = arg[1] or "build"
local seconds = tonumber(arg[2] or 10)
package.path = "bench/?.lua;" .. package.path
local util = require("util")
util.paths(build)

local core = require("phonehome.core")

local THREADS, CONNECTIONS = 2, 32

local sh = util.sh

local wait_for = util.wait_for

local tmp = util.tmpdir()
local bin = build .. "/phonehome"
sh(bin .. " show synapse --data-dir " .. tmp .. " > " .. tmp .. "/body.json")
local pid = tonumber(sh(bin .. " collect --listen 127.0.0.1:0 --db " .. tmp
    .. "/reports.db >/dev/null 2>" .. tmp .. "/collect.log & echo $!"))
local port = wait_for(tmp .. "/collect.log", "addr=127%.0%.0%.1:(%d+)")

local out = sh(string.format("PHONEHOME_BENCH_BODY=%s/body.json wrk -t%d -c%d -d%ds --latency "
    .. "-s bench/collect-load.lua http://127.0.0.1:%s/ 2>&1",
    tmp, THREADS, CONNECTIONS, seconds, port))
local rate = tonumber(out:match("Requests/sec:%s+([%d%.]+)"))
local function latency(p)
    local v, unit = out:match("\n%s+" .. p .. "%%%s+([%d%.]+)(%a+)")
    if not v then return nil end
    return tonumber(v) * ({ us = 0.001, ms = 1, s = 1000 })[unit]
end
local answered = tonumber(out:match("(%d+) requests in"))
local non2xx = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)") or 0)
local hwm = tonumber(sh("awk '/VmHWM/ {print $2}' /proc/" .. pid .. "/status"))
util.stop(pid)

local db = assert(core.db_open(tmp .. "/reports.db"))
local rows = db:rows("SELECT count(*) AS n FROM reports")[1].n
db:close()

if not rate then
    print(out)
    error("wrk printed no figures")
end
print(string.format("collect: %d clients (%d threads) over loopback, %d s, "
    .. "Synapse reports of %d bytes",
    CONNECTIONS, THREADS, seconds, #sh("cat " .. tmp .. "/body.json")))
print(string.format("  %.0f reports/s   p50 %.2f ms   p99 %.2f ms   peak RSS %d KiB",
    rate, latency(50), latency(99), hwm))
print(string.format("  answered %d (non-2xx %d); rows committed %d: %s", answered, non2xx, rows,
    (non2xx == 0 and rows >= answered) and "every answered report is stored"
        or "REPORTS MISSING"))
os.execute("rm -rf " .. tmp)
