-- The probes as report scripts see them (ctx.system, ctx.process): friendly names over
-- phonehome.core, failures raised as errors (so a field that needs a probe fails with
-- its reason).
local core = require("phonehome.core")

local M = {}

local function must(v, err, ...)
    if v == nil and err ~= nil then error(err, 3) end
    return v, err, ...
end

local arch_names = {
    x86_64 = "x86_64", amd64 = "x86_64", i386 = "x86", i486 = "x86", i586 = "x86",
    i686 = "x86", aarch64 = "arm64", arm64 = "arm64", aarch64_be = "arm64",
}

-- The normalised architecture of a uname machine name: x86_64, arm64, arm, x86, ...
function M.normalise_arch(machine)
    if arch_names[machine] then return arch_names[machine] end
    if machine:match("^armv%d") or machine == "arm" then return "arm" end
    return machine
end

local uname
local function get_uname()
    uname = uname or must(core.uname())
    return uname
end

M.system = {
    memory_total = function() return must(core.memory_total()) end,
    memory_free = function() return must(core.memory_free()) end,
    memory_available = function() return must(core.memory_available()) end,
    memory_limit = function() return core.memory_limit() end,
    cores = function() return must(core.cpu_count()) end,
    parallelism = function() return core.parallelism() end,
    uptime = function() return must(core.system_uptime()) end,
    machine = function() return get_uname().machine end,
    arch = function() return M.normalise_arch(get_uname().machine) end,
    os = function() return get_uname().sysname end,
    kernel = function() return get_uname().release end,
    container = function() return (core.container()) end,
    kubernetes = function() return select(2, core.container()) end,
    time = function() return must(core.time()) end,
}

-- Total and free bytes of the file system that holds path, or would hold it: a path
-- that does not exist yet is measured at its nearest existing parent.
function M.system.disk(path)
    local p = path
    while true do
        local total, free = core.disk(p)
        if total then return total, free end
        if core.exists(p) or p == "/" or not p:find("/") then must(nil, free) end
        p = p:match("^(.*)/[^/]*$")
        if p == "" then p = "/" end
    end
end

-- One reading of the target process (see core.process), raising when it is gone.
function M.process(pid)
    return must(core.process(pid))
end

return M
