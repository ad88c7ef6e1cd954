-- Small helpers the benchmarks share: shell output, medians, a scratch directory.
local M = {}

function M.sh(cmd)
    local p = io.popen(cmd)
    local out = p:read("a")
    p:close()
    return out
end

function M.median(xs)
    table.sort(xs)
    local n = #xs
    return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

function M.tmpdir()
    return (M.sh("mktemp -d /tmp/phonehome-bench.XXXXXX"):gsub("%s+$", ""))
end

-- Waits (up to 10 s) for a match of pattern in a file; returns the capture.
function M.wait_for(path, pattern)
    for _ = 1, 500 do
        local f = io.open(path)
        local m = f and f:read("a"):match(pattern)
        if f then f:close() end
        if m then return m end
        M.sh("sleep 0.02")
    end
    error("timed out waiting for " .. pattern .. " in " .. path)
end

-- Stops a process with SIGTERM and waits until it is gone.
function M.stop(pid)
    M.sh("kill -TERM " .. pid .. "; while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
end

-- Sets the paths for the library and the core module of a build directory.
function M.paths(build)
    package.path = "lib/?.lua;lib/?/init.lua;bench/?.lua;" .. package.path
    package.cpath = build .. "/lib/?.so;" .. package.cpath
end

return M
