-- Benchmark of the daemon's StatsD input: lines taken per CPU-second on one core, side by
-- side with the reference StatsD daemon (npm statsd, installed under BUILD/bench-statsd)
-- fed the same lines in the same run, with what each lost; the kernel's drop count for a
-- burst of a million lines; the memory of 100 sets. Run by `make bench`; prints figures,
-- asserts nothing.
local build = arg[1] or "build"
local lines = tonumber(arg[2] or 1000000)
package.path = "bench/?.lua;spec/?.lua;" .. package.path
local util = require("util")
util.paths(build)

local json = require("phonehome.json")
local sh = util.sh
local h = require("support.helper")

local tmp = util.tmpdir()
local bin = build .. "/phonehome"
local send = h.statsd_send()
local started = {}

-- CPU time of a process, to the nanosecond (the scheduler's count, not clock ticks).
local function cpu_seconds(pid)
    local ns = sh("cat /proc/" .. pid .. "/schedstat 2>/dev/null"):match("^(%d+)")
    return ns and tonumber(ns) / 1e9
end

local function rss_kib(pid)
    return tonumber(sh("awk '/^VmRSS/ { print $2 }' /proc/" .. pid .. "/status"))
end

local function free_port()
    return tonumber(sh("python3 -c 'import socket; s=socket.socket(socket.AF_INET, "
        .. "socket.SOCK_DGRAM); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"))
end

-- A product declaring the metrics, its daemon on one core at a time scale (drains a
-- minute / scale after lines arrive); returns pid, data directory, address.
local function phonehome(metrics, scale)
    local dir, data = util.tmpdir(), util.tmpdir()
    local decl = {}
    for i, m in ipairs(metrics) do
        decl[i] = string.format("{ name = %q, type = %q, description = \"d\" }", m[1], m[2])
    end
    h.write(dir .. "/bench.lua", [[
return {
    name = "bench", description = "StatsD bench", endpoint = "http://127.0.0.1:9/r",
    schedule = { first = "24h", interval = "24h" },
    optout = { default = "on" }, disclosure = { on = "on", off = "off" },
    metrics = { ]] .. table.concat(decl, ", ") .. [[ },
    fields = { { name = "n", type = "int", description = "d", value = 1 } },
}
]])
    local port = free_port()
    local pid = tonumber(sh("taskset -c 1 " .. bin .. " run --scripts " .. dir .. " --data-dir "
        .. data .. " --time-scale " .. (scale or 600) .. " --statsd 127.0.0.1:" .. port
        .. " >/dev/null 2>" .. data .. "/log & echo $!"))
    started[#started + 1] = pid
    util.wait_for(data .. "/log", "StatsD input listening")
    return pid, data, "127.0.0.1:" .. port
end

local function counts(data)
    local f = io.open(data .. "/statsd.json")
    local v = f and json.decode(f:read("a")) or {}
    if f then f:close() end
    return v
end

-- Sends n lines made from format on core 0; waits until the daemon has taken them all
-- or stopped taking any; returns lines taken, CPU seconds, kernel drops, wall seconds.
local function feed_phonehome(format, n, pid, data, addr)
    local before = cpu_seconds(pid)
    sh("taskset -c 0 " .. send .. " " .. addr .. " -n " .. n .. " -f '" .. format .. "'")
    local last, same = -1, 0
    while same < 10 do
        sh("sleep 0.1")
        local c = counts(data).lines or 0
        if c >= n then break end
        if c == last then same = same + 1 else same, last = 0, c end
    end
    local c = counts(data)
    return c.lines or 0, cpu_seconds(pid) - before, c.kernel_drops or 0
end

-- npm statsd: installed once under the build directory.
local function install_npm()
    local dir = build .. "/bench-statsd"
    if io.open(dir .. "/node_modules/statsd/stats.js") then return dir end
    if sh("command -v npm") == "" then
        local sudo = sh("id -u"):match("^0") and "" or "sudo "
        sh(sudo .. "apt-get install -y -qq nodejs npm >/dev/null 2>&1")
    end
    sh("mkdir -p " .. dir .. " && cp bench/statsd/package.json " .. dir .. "/ && cd " .. dir
        .. " && npm install --no-audit --no-fund --silent >/dev/null 2>&1")
    if io.open(dir .. "/node_modules/statsd/stats.js") then return dir end
    return nil
end

-- The reference daemon on core 1; returns pid, its management port, its address.
local function npm_statsd(dir)
    local port, mgmt = free_port(), free_port()
    h.write(tmp .. "/npm.js", string.format([[
{ port: %d, address: "127.0.0.1", mgmt_port: %d, mgmt_address: "127.0.0.1",
  backends: [], flushInterval: 3600000, deleteCounters: false }
]], port, mgmt))
    local pid = tonumber(sh("cd " .. dir .. " && taskset -c 1 node node_modules/statsd/stats.js "
        .. tmp .. "/npm.js >" .. tmp .. "/npm.log 2>&1 & echo $!"))
    started[#started + 1] = pid
    for _ = 1, 100 do
        if sh("ss -lnu | grep -c ':" .. port .. " '"):match("^1") then break end
        sh("sleep 0.1")
    end
    return pid, mgmt, "127.0.0.1:" .. port
end

-- Its counters, through its management interface (a JavaScript object's text).
local function npm_counters(mgmt)
    local out = sh("timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. mgmt
        .. "; printf \"counters\\n\" >&3; timeout 1 cat <&3' 2>/dev/null")
    local v = {}
    for name, n in out:gmatch("'([^']+)':%s*([%d.]+)") do v[name] = tonumber(n) end
    return v
end

local function feed_npm(format, name, n, pid, mgmt, addr)
    local before = cpu_seconds(pid)
    sh("taskset -c 0 " .. send .. " " .. addr .. " -n " .. n .. " -f '" .. format .. "'")
    local last, same = -1, 0
    local taken = 0
    while same < 10 do
        sh("sleep 0.2")
        taken = npm_counters(mgmt)[name] or 0
        if taken >= n then break end
        if taken == last then same = same + 1 else same, last = 0, taken end
    end
    return taken, cpu_seconds(pid) - before
end

local function rate(n, seconds)
    if not seconds or seconds <= 0 then return "n/a" end
    local r = n / seconds
    return r >= 1e6 and string.format("%.2fM", r / 1e6) or string.format("%.0fk", r / 1e3)
end

local function body()
    local format, name = "bench.count:1|c", "bench.count"
    -- phonehome
    local pid, data, addr = phonehome({ { name, "counter" } })
    local taken, cpu, drops = feed_phonehome(format, lines, pid, data, addr)
    print(string.format("statsd ingest, %d counter lines in 1400-byte datagrams, daemon on "
        .. "one core: phonehome %s lines/CPU-s (%.3f CPU-s), %d lost, %d datagrams dropped "
        .. "by the kernel", lines, rate(taken, cpu), cpu, lines - taken, drops))
    util.stop(pid)
    -- the reference
    local dir = install_npm()
    if not dir then
        print("statsd ingest, npm statsd: not installed (no npm or no network); no ratio")
    else
        local npid, mgmt, naddr = npm_statsd(dir)
        local ntaken, ncpu = feed_npm(format, name, lines, npid, mgmt, naddr)
        print(string.format("statsd ingest, the same lines: npm statsd %s lines/CPU-s "
            .. "(%.3f CPU-s), %d lost; phonehome/npm %.1fx (target >= 5x, no loss)",
            rate(ntaken, ncpu), ncpu, lines - ntaken, (taken / cpu) / (ntaken / ncpu)))
        util.stop(npid)
    end
    -- memory of 100 sets, each fed 10,000 distinct values: as counted (the listener's
    -- registers; at a time scale of 1 nothing is drained for a minute), then once a
    -- reload (SIGHUP) drained them into the window (the product's state holds each set as
    -- text too)
    local metrics = {}
    for i = 1, 100 do metrics[i] = { "bench.set" .. i, "set" } end
    pid, data, addr = phonehome(metrics, 1)
    local before = rss_kib(pid)
    for i = 1, 100 do
        sh("taskset -c 0 " .. send .. " " .. addr .. " -n 10000 -f 'bench.set" .. i
            .. ":user-%d|s'")
    end
    sh("sleep 0.5")
    local counted = rss_kib(pid)
    sh("kill -HUP " .. pid)
    local want = 100 * 10000
    for _ = 1, 100 do
        if (counts(data).lines or 0) >= want then break end
        sh("sleep 0.1")
    end
    local saved = rss_kib(pid)
    local state = sh("wc -c < " .. data .. "/bench/state.json")
    print(string.format("statsd memory, 100 sets of 10,000 distinct values: RSS %d KiB idle, "
        .. "%d KiB counted (%.1f KiB per set; a HyperLogLog is 16 KiB), %d KiB with the "
        .. "window saved (%.1f KiB per set), state file %d KiB; %d of %d lines taken",
        before, counted, (counted - before) / 100, saved, (saved - before) / 100,
        tonumber(state) // 1024, counts(data).lines or 0, want))
    util.stop(pid)
end

local ok, err = pcall(body)
for _, pid in ipairs(started) do sh("kill -9 " .. pid .. " 2>/dev/null") end
sh("rm -rf " .. tmp)
if not ok then print("statsd bench failed: " .. tostring(err)) end
