-- The control state's handle to a product's sandbox: its script loaded into a Lua state
-- of its own (memory cap, time limit), its definition as plain data (what the collector
-- checks reports against: definition.validate), and calls to build its report. What runs
-- inside is entry.lua and the modules beside it; nothing but plain values crosses between
-- the two states.
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

-- open(path [, opts]) -> product, or nil, { "file:line: problem", ... }.
function M.open(path, opts)
    opts = opts or {}
    local source, err = core.readfile(path)
    if not source then return nil, { err } end
    local sb = core.sandbox({ path = package.path, entry = "phonehome.sandbox.entry",
                              memory = opts.memory or M.memory,
                              timeout = opts.timeout or M.timeout })
    local ok, desc = sb:call("load", source, "@" .. path)
    if not ok then
        sb:close()
        return nil, located(path, desc)
    end
    return setmetatable({ path = path, name = desc.name, def = desc, sandbox = sb }, Product)
end

-- build(opts) -> json, warnings | nil, errors (see entry.build for opts).
function Product:build(opts)
    local ok, out, warnings = self.sandbox:call("build", opts)
    if not ok then
        -- killed: name the field it was computing, after the position
        local _, field, at = self.sandbox:call("current")
        if field then
            local pos, rest = out:match("^([^%s:]+:%d+: )(.*)$")
            out = (pos or (at .. ": ")) .. "field '" .. field .. "': " .. (rest or out)
        end
        return nil, located(self.path, out)
    end
    if out == nil then return nil, warnings end
    return out, warnings
end

function Product:close()
    self.sandbox:close()
end

-- read_data(path) -> the table of a data-only Lua file (such as --config), run in a
-- small sandbox of its own, or nil, message.
function M.read_data(path)
    local source, err = core.readfile(path)
    if not source then return nil, err end
    local sb = core.sandbox({ path = package.path, entry = "phonehome.sandbox.entry",
                              memory = 8 * 1024 * 1024, timeout = 1.0 })
    local ok, t = sb:call("read_data", source, "@" .. path)
    sb:close()
    if not ok then return nil, located(path, t)[1] end
    return t
end

return M
