-- Benchmarks of `phonehome run`: idle memory with every bundled product loaded; CPU
-- and context switches while idle (the target is none: no polling); CPU per report
-- delivered end to end over loopback HTTP and over HTTPS with a new TLS connection
-- each. Run by `make bench`; prints figures, asserts nothing.
local build = arg[1] or "build"
local idle_seconds = tonumber(arg[2] or 60)
package.path = "bench/?.lua;" .. package.path
local util = require("util")
util.paths(build)

local core = require("phonehome.core")
local sh = util.sh

local tmp = util.tmpdir()
local bin = build .. "/phonehome"
local ticks = tonumber(sh("getconf CLK_TCK"))

local wait_for = util.wait_for

local function start(args, name)
    local pid = tonumber(sh(bin .. " " .. args .. " >/dev/null 2>" .. tmp .. "/" .. name
        .. ".log & echo $!"))
    return pid, tmp .. "/" .. name .. ".log"
end

local function cpu_seconds(pid)
    local stat = util.sh("cat /proc/" .. pid .. "/stat")
    local fields = {}
    for f in stat:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = f end
    return (tonumber(fields[12]) + tonumber(fields[13])) / ticks   -- utime, stime
end

local function switches(pid)
    local s = sh("cat /proc/" .. pid .. "/status")
    return tonumber(s:match("\nvoluntary_ctxt_switches:%s+(%d+)"))
        + tonumber(s:match("nonvoluntary_ctxt_switches:%s+(%d+)"))
end

local function rows(db)
    local d = assert(core.db_open(db))
    local n = d:rows("SELECT count(*) AS n FROM reports")[1].n
    d:close()
    return n
end

local stop = util.stop

-- collectors: plain and TLS, with a certificate made for this run
sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost "
    .. "-addext subjectAltName=IP:127.0.0.1 -days 2 -keyout " .. tmp .. "/key.pem -out " .. tmp
    .. "/cert.pem 2>/dev/null")
local cpid, clog = start("collect --listen 127.0.0.1:0 --db " .. tmp .. "/plain.db", "collect")
local port = wait_for(clog, "addr=127%.0%.0%.1:(%d+)")
local tpid, tlog = start("collect --listen 127.0.0.1:0 --db " .. tmp .. "/tls.db --tls-cert " .. tmp
    .. "/cert.pem --tls-key " .. tmp .. "/key.pem", "tls")
local tport = wait_for(tlog, "addr=127%.0%.0%.1:(%d+)")

-- idle: every bundled product, real schedules (Coroot reports at start, then nothing is due)
local rpid, rlog = start("run --endpoint http://127.0.0.1:" .. port .. " --data-dir " .. tmp
    .. "/idle", "idle")
wait_for(rlog, "product=coroot msg=\"report sent\"")
sh("sleep 1")
local status = sh("cat /proc/" .. rpid .. "/status")
local rss = tonumber(status:match("VmRSS:%s+(%d+)"))
local anon = tonumber(sh("awk '/^Anonymous:/ {print $2}' /proc/" .. rpid .. "/smaps_rollup"))
local cpu0, sw0 = cpu_seconds(rpid), switches(rpid)
sh("sleep " .. idle_seconds)
local cpu1, sw1 = cpu_seconds(rpid), switches(rpid)
stop(rpid)
print(string.format("run, idle with 5 products loaded: RSS %d KiB, private (anon) %d KiB",
                    rss, anon))
print(string.format("  over %d s idle: CPU %.3f s, context switches %d (wake-ups)", idle_seconds,
                    cpu1 - cpu0, sw1 - sw0))

-- CPU per report: Coroot every 100 ms (time scale 36000), for a while, each report a new
-- connection; measured from the daemon's own CPU time
local function per_report(url, db, extra, name)
    local data = tmp .. "/" .. name
    local before = rows(db)
    local pid, log = start("run coroot --time-scale 36000 --endpoint " .. url
        .. " --data-dir " .. data .. " " .. extra, name)
    wait_for(log, "msg=\"report sent\"")
    local c0, n0 = cpu_seconds(pid), rows(db)
    sh("sleep 10")
    local c1, n1 = cpu_seconds(pid), rows(db)
    stop(pid)
    assert(n1 > n0, "no report delivered: " .. log)
    return (c1 - c0) / (n1 - n0) * 1000, n1 - n0, before
end
local ms, n = per_report("http://127.0.0.1:" .. port, tmp .. "/plain.db", "", "plain")
print(string.format("  CPU per report delivered over loopback HTTP: %.2f ms (%d reports)", ms, n))
ms, n = per_report("https://127.0.0.1:" .. tport, tmp .. "/tls.db",
                   "--set coroot.ca_file=" .. tmp .. "/cert.pem", "tls")
print(string.format("  CPU per report delivered over HTTPS, new TLS connection each: %.2f ms "
    .. "(%d reports)", ms, n))
stop(cpid)
stop(tpid)
os.execute("rm -rf " .. tmp)
