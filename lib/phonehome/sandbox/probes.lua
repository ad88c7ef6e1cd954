-- The probes as report scripts see them (ctx.system, ctx.process): friendly names over
-- phonehome.core, failures raised as errors (so a field that needs a probe fails with
-- its reason).
local core = require("phonehome.core")
local process = require("phonehome.base.process")

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

-- One reading of the target process (see core.process), raising when it is gone, with
-- what a product's definition declares it may read of it (decl: def.process):
-- env(NAME) and flag("--name") for declared names, exe, and cgroup (container,
-- kubernetes, container_id), each read on first use.
function M.process(pid, decl)
    local p = must(core.process(pid))
    local declared = { env = {}, flags = {} }
    for _, k in ipairs({ "env", "flags" }) do
        for _, n in ipairs(decl and decl[k] or {}) do declared[k][n] = true end
    end
    local environ, argv
    p.env = function(name)
        if not declared.env[name] then
            error("the product's variable " .. string.format("%q", tostring(name))
                .. " is not declared in process.env", 2)
        end
        environ = environ or must(core.process_environ(pid))
        return environ[name]
    end
    p.flag = function(name)
        if not declared.flags[name] then
            error("the product's flag " .. string.format("%q", tostring(name))
                .. " is not declared in process.flags", 2)
        end
        argv = argv or must(core.process_cmdline(pid))
        return process.flag(argv, name)
    end
    return setmetatable(p, { __index = function(t, k)
        local v
        if k == "exe" then v = must(core.process_exe(pid))
        elseif k == "cgroup" then v = must(core.process_cgroup(pid))
        else return nil end
        rawset(t, k, v)
        return v
    end })
end

return M
