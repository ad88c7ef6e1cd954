-- Benchmark of `show` for each bundled product: the in-process time to build and
-- encode one report, the memory of the real process at its output, and the wall
-- time from exec to output. Run by `make bench`; prints figures, asserts nothing.
local build = arg[1] or "build"
package.path = "bench/?.lua;" .. package.path
local util = require("util")
util.paths(build)

local async = require("phonehome.base.async")
local core = require("phonehome.core")
local sandbox = require("phonehome.sandbox")

local BUILDS, EXECS = 200, 30

local sh, median = util.sh, util.median

local tmp = util.tmpdir()
local bin = build .. "/phonehome"

-- Time of p:build() alone: probes, sources, field functions, checks and encoding,
-- measured inside this process across the sandbox boundary, as the daemon calls it (in a
-- coroutine, the loop turning while sources are read). nil when the product cannot build
-- a report on this machine (its server is not here: MongooseIM needs its GraphQL API).
local function build_time(name)
    local p = assert(sandbox.open("scripts/" .. name .. ".lua"))
    local settings = {}
    for _, s in ipairs(p.def.settings) do settings[s.name] = s.default end
    local opts = { settings = settings, instance_id = core.uuid(), session_id = core.uuid() }
    local times, built = {}, true
    async.spawn(function()
        for i = 1, BUILDS do
            local t0 = core.monotonic()
            local json = p:build(opts)
            times[i] = (core.monotonic() - t0) * 1e6
            if not json then built = false break end
        end
    end)
    core.run()
    p:close()
    return built and median(times) or nil
end

-- Peak RSS and private memory of the real `phonehome show` process, read from /proc
-- while it is blocked writing its report into a pipe that was filled beforehand.
local function process_memory(name)
    local script = [[
d=%s; rm -f "$d/f"; mkfifo "$d/f"; exec 3<>"$d/f"
head -c 65536 /dev/zero >&3
%s show %s --data-dir "$d" >"$d/f" 2>/dev/null & pid=$!
for i in $(seq 1 200); do
  st=$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)
  [ "$st" = S ] && [ "$(cut -d' ' -f1 /proc/$pid/syscall 2>/dev/null)" = 1 ] && break
  sleep 0.01
done
grep VmHWM /proc/$pid/status | awk '{print $2}'
awk '/^Anonymous:/ {print $2}' /proc/$pid/smaps_rollup
kill $pid; exec 3>&-]]
    local out = sh(string.format(script, tmp, bin, name))
    local hwm, anon = out:match("(%d+)%s+(%d+)")
    return tonumber(hwm), tonumber(anon)
end

-- Wall time from exec to the whole report read, through /bin/sh.
local function exec_time(name)
    local times = {}
    for i = 1, EXECS do
        local t0 = core.monotonic()
        local out = sh(bin .. " show " .. name .. " --data-dir " .. tmp .. " 2>/dev/null")
        times[i] = (core.monotonic() - t0) * 1e3
        if out:sub(1, 1) ~= "{" then return nil end
    end
    return median(times)
end

print(string.format("show: %d builds in process, %d runs of the binary; medians", BUILDS, EXECS))
print(string.format("%-14s %14s %14s %14s %14s", "product", "build+encode", "peak RSS",
                    "private (anon)", "exec→output"))
local names = {}
for _, f in ipairs(core.listdir("scripts")) do
    names[#names + 1] = f:match("^(.+)%.lua$")
end
table.sort(names)
for _, name in ipairs(names) do
    local us = build_time(name)
    if not us then
        print(string.format("%-14s %s", name, "(builds no report without its server here)"))
    else
        local hwm, anon = process_memory(name)
        local ms = exec_time(name) or -1
        print(string.format("%-14s %11.0f µs %11d KiB %11d KiB %11.2f ms", name, us, hwm or -1,
                            anon or -1, ms))
    end
end
os.execute("rm -rf " .. tmp)
