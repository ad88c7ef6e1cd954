-- Benchmarks of hot reload: latency from a script write to the new version running
-- (less the debounce window), and a soak of 1,000 reloads while reports flow, checking
-- private memory and that no report is lost or sent twice. Run by `make bench`.
local build = arg[1] or "build"
local reloads = tonumber(arg[2] or 1000)
package.path = "bench/?.lua;" .. package.path
local util = require("util")
util.paths(build)

local core = require("phonehome.core")
local sh = util.sh
local watch = require("phonehome.daemon.watch")

local tmp = util.tmpdir()
local bin = build .. "/phonehome"
local scripts, data = tmp .. "/scripts", tmp .. "/data"
sh("mkdir -p " .. scripts .. " " .. data)

local function script(version)
    return string.format([[
return {
    name = "a", version = %q, description = "bench product",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = "50ms", interval = "50ms" },
    optout = { default = "on" }, disclosure = { on = "on", off = "off" },
    fields = { { name = "n", type = "int", description = "d", value = function() return 1 end } },
}
]], version)
end

local function write(version)
    local f = assert(io.open(scripts .. "/a.lua.tmp", "w"))
    f:write(script(version))
    f:close()
    os.rename(scripts .. "/a.lua.tmp", scripts .. "/a.lua")
end

-- follows a log file as it grows
local function follower(path)
    local f = assert(io.open(path))
    local buf = ""
    return function(pattern, seconds)
        local deadline = core.monotonic() + (seconds or 10)
        while core.monotonic() < deadline do
            local more = f:read("a")
            if more and #more > 0 then buf = buf .. more end
            local s, e = buf:find(pattern)
            if s then
                buf = buf:sub(e + 1)
                return core.monotonic()
            end
            sh("sleep 0.001")
        end
        error("not seen in " .. path .. ": " .. pattern)
    end
end

local function anon(pid)
    return tonumber(sh("awk '/^Anonymous:/ {print $2}' /proc/" .. pid .. "/smaps_rollup"))
end

local cpid = tonumber(sh(bin .. " collect --listen 127.0.0.1:0 --db " .. tmp .. "/r.db --scripts "
    .. scripts .. " >/dev/null 2>" .. tmp .. "/collect.log & echo $!"))
write("v0")
local cwait = follower(tmp .. "/collect.log")
cwait("msg=listening")
local port = sh("cat " .. tmp .. "/collect.log"):match("addr=127%.0%.0%.1:(%d+)")
local pid = tonumber(sh(bin .. " run --scripts " .. scripts .. " --data-dir " .. data
    .. " --endpoint http://127.0.0.1:" .. port .. " >/dev/null 2>" .. tmp .. "/run.log & echo $!"))
local wait = follower(tmp .. "/run.log")
wait('msg="report sent"')

-- latency: write, then see the reload logged
local latencies = {}
for i = 1, 20 do
    local t0 = core.monotonic()
    write("lat" .. i)
    local t1 = wait("msg=reloaded [^\n]*version=lat" .. i .. "\n")
    latencies[i] = (t1 - t0) * 1000 - watch.DEBOUNCE_MS
end
print(string.format("reload: write → new version running: median %.1f ms after the %d ms debounce "
    .. "(20 writes by rename)", util.median(latencies), watch.DEBOUNCE_MS))

-- soak: reloads by SIGHUP, one after another, while a report goes every 50 ms
local before = anon(pid)
local t0 = core.monotonic()
for i = 1, reloads do
    write("soak" .. i)
    sh("kill -HUP " .. pid)
    wait("msg=reloaded [^\n]*version=soak" .. i .. "\n")
end
local elapsed = core.monotonic() - t0
sh("sleep 0.3")
local after = anon(pid)
util.stop(pid)
util.stop(cpid)
local _, sent = sh("cat " .. tmp .. "/run.log"):gsub('msg="report sent"', "")
local db = assert(core.db_open(tmp .. "/r.db"))
local r = db:rows("SELECT count(*) AS n, count(DISTINCT idempotency_key) AS keys FROM reports")[1]
db:close()
print(string.format("  soak: %d reloads in %.1f s while reports flowed; "
    .. "private memory %d KiB before, %d KiB after "
    .. "(%+.1f%%)", reloads, elapsed, before, after, (after - before) * 100 / before))
print(string.format("  reports: %d sent, %d stored, %d distinct keys: %s", sent, r.n, r.keys,
    (sent == r.n and r.n == r.keys) and "none lost or duplicated" or "MISMATCH"))
os.execute("rm -rf " .. tmp)
