-- The control state's handle to a product's script: its source, its definition as plain
-- data (what the collector checks reports against: definition.validate), and the calls
-- that load it and build its report. Each call runs in a child
-- process of its own (runtime/isolate.c), on a copy of a sandboxed Lua state that holds
-- only the trusted entry.lua and the modules beside it, under a memory cap and a time
-- limit that nothing in the script can escape; only plain values come back.
local core = require("phonehome.core")

local M = {}

M.memory = 32 * 1024 * 1024   -- bytes a product's state may hold
M.timeout = 1.0               -- seconds one load or build may run

local Product = {}
Product.__index = Product

-- Prefixes the file to a message that does not start with a position already.
local function located(path, msg)
    local out = {}
    for line in tostring(msg):gmatch("[^\n]+") do
        if not line:match("^[^%s:]+:%d+: ") and not line:find(path, 1, true) then
            line = path .. ": " .. line
        end
        out[#out + 1] = line
    end
    return out
end

-- names(dir) -> the products whose scripts are in dir (NAME.lua), sorted.
function M.names(dir)
    local names = {}
    for _, f in ipairs(core.listdir(dir) or {}) do
        local n = f:match("^([%w_%-]+)%.lua$")
        if n then names[#names + 1] = n end
    end
    table.sort(names)
    return names
end

-- The script of a product in a scripts directory.
function M.path(dir, name)
    return dir .. "/" .. name .. ".lua"
end

-- open_in(dir, name [, opts]): open() of a product's script in dir, or nil,
-- { "unknown product 'NAME'" } when there is none.
function M.open_in(dir, name, opts)
    local path = M.path(dir, name)
    if not core.exists(path) then return nil, { "unknown product '" .. name .. "'" } end
    return M.open(path, opts)
end

-- The sandboxed states calls run on copies of, one per pair of limits.
local templates = {}
local function template(memory, timeout)
    local key = memory .. "/" .. timeout
    templates[key] = templates[key] or core.sandbox({
        path = package.path, entry = "phonehome.sandbox.entry", memory = memory,
        timeout = timeout })
    return templates[key]
end

-- call(sb, name, ...) -> sb:call's results; inside a coroutine (the daemon's), the call
-- runs while the loop goes on and the coroutine waits for it.
local function call(sb, ...)
    if not coroutine.isyieldable() then return sb:call(...) end
    local co = coroutine.running()
    sb:call_async(function(...)
        local ok, err = coroutine.resume(co, ...)
        if not ok then io.stderr:write("phonehome: internal error: ", tostring(err), "\n") end
    end, ...)
    return coroutine.yield()
end

-- open(path [, opts]) -> product, or nil, { "file:line: problem", ... }.
-- opts: memory (bytes), timeout (seconds), for each call.
function M.open(path, opts)
    opts = opts or {}
    local source, err = core.readfile(path)
    if not source then return nil, { err } end
    local sb = template(opts.memory or M.memory, opts.timeout or M.timeout)
    local ok, desc = call(sb, "load", source, "@" .. path)
    if not ok then return nil, located(path, desc) end
    return setmetatable({ path = path, name = desc.name, def = desc, source = source,
                          sandbox = sb }, Product)
end

-- build(opts) -> json, warnings | nil, errors (see entry.build for opts).
function Product:build(opts)
    local ok, out, warnings, at = call(self.sandbox, "build", self.source, "@" .. self.path,
                                       opts)
    if not ok then
        -- killed: name the field it was computing, after the position
        local field = warnings
        if field then
            local pos, rest = out:match("^([^%s:]+:%d+: )(.*)$")
            out = (pos or (at .. ": ")) .. "field '" .. field .. "': " .. (rest or out)
        end
        return nil, located(self.path, out)
    end
    if out == nil then return nil, warnings end
    return out, warnings
end

-- Nothing to free: the product's calls left with their processes.
function Product.close() end

-- read_data(path) -> the table of a data-only Lua file (such as --config), read in a
-- sandbox of its own under the same limits as a script, or nil, message.
function M.read_data(path)
    local source, err = core.readfile(path)
    if not source then return nil, err end
    local ok, t = call(template(M.memory, M.timeout), "read_data", source, "@" .. path)
    if not ok then return nil, located(path, t)[1] end
    return t
end

return M
