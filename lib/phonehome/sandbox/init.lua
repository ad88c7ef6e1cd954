-- The control state's handle to a product's script: its source, its definition as plain
-- data (what the collector checks reports against: definition.validate), and the calls
-- that load it and build its report. Each call runs in a child
-- process of its own (runtime/isolate.c), on a copy of a sandboxed Lua state that holds
-- only the trusted entry.lua and the modules beside it, under a memory cap and a time
-- limit that nothing in the script can escape; only plain values come back.
local core = require("phonehome.core")
local defsources = require("phonehome.definition.sources")
local sources = require("phonehome.sources")

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
        path = package.path, cpath = package.cpath, entry = "phonehome.sandbox.entry",
        memory = memory,
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

-- A call's failure as messages: a killed build names the field it was computing, after
-- the position.
function Product:failure(out, field, at)
    if field then
        local pos, rest = out:match("^([^%s:]+:%d+: )(.*)$")
        out = (pos or (at .. ": ")) .. "field '" .. field .. "': " .. (rest or out)
    end
    return located(self.path, out)
end

-- Reads the product's sources for one report: the sandbox says which can be read now
-- (their options computed from what was read before), the host reads them, until none is
-- left. hooks.decide(settings) -> false stops before any source the opt-out decision
-- does not need is read (settings: as read from the product so far); hooks.read(specs)
-- -> results replaces the host's reading (for tests). Returns fetched, settings, or nil,
-- errors, or false when the decision was not to build.
function Product:read_sources(opts, hooks)
    local fetched, decided = {}, not hooks.decide
    local budget_end = core.monotonic() + defsources.BUDGET / 1000
    for _ = 1, #self.def.sources + 2 do
        local ok, plan, field, at = call(self.sandbox, "plan", self.source, "@" .. self.path,
                                         opts, fetched)
        if not ok then return nil, self:failure(plan, field, at) end
        for name, msg in pairs(plan.failed) do fetched[name] = { ok = false, error = msg } end
        if not decided and not plan.early_pending then
            if not hooks.decide(plan.settings) then return false end
            decided = true
        end
        local specs = {}
        for _, spec in ipairs(plan.fetch) do
            if decided or spec.early then specs[#specs + 1] = spec end
        end
        if #specs > 0 then
            local left = budget_end - core.monotonic()
            local results
            if left <= 0 then
                results = {}
                for _, spec in ipairs(specs) do
                    results[spec.name] = { ok = false, error = "the report's budget of "
                        .. defsources.BUDGET // 1000 .. " s for sources is spent" }
                end
            else
                results = (hooks.read or sources.read_all)(specs, left)
            end
            for name, r in pairs(results) do fetched[name] = r end
            -- nothing waited for what was read: no need to ask again
            if decided and not plan.waiting and #specs == #plan.fetch then
                return fetched, plan.warnings
            end
        elseif next(plan.failed) == nil and (decided or not plan.waiting) then
            if not decided and not hooks.decide(plan.settings) then return false end
            return fetched, plan.warnings
        end
    end
    return fetched, {}
end

-- build(opts [, hooks]) -> json, warnings | nil, errors | false (not to be built: see
-- read_sources), then info: { fetched = what was read of the sources, times = per field
-- path { ms, error } (for `show --explain`), settings = the settings the report was built
-- with, the product's own config applied }. opts as for entry.build; opts.dry reads no
-- source.
function Product:build(opts, hooks)
    local fetched, warnings = {}, {}
    if #self.def.sources > 0 and not opts.dry then
        fetched, warnings = self:read_sources(opts, hooks or {})
        if not fetched then return fetched, warnings end
    elseif hooks and hooks.decide and not hooks.decide(opts.settings) then
        return false
    end
    local info = { fetched = fetched }
    local ok, out, problems, at = call(self.sandbox, "build", self.source, "@" .. self.path,
                                       opts, fetched)
    if not ok then return nil, self:failure(out, problems, at), info end
    if out == nil then return nil, problems, info end
    table.move(warnings, 1, #warnings, #problems + 1, problems)
    -- on success, at is the build's own account: times, settings, ctx.increase's values
    info.times, info.settings, info.marks = at.times, at.settings, at.marks
    return out, problems, info
end

-- sample(name, opts) -> the reading of a sampler of a source (a number, or nil for none
-- this time), or nil, message: its source read alone (a source whose options wait for
-- another cannot be sampled), then its value function.
function Product:sample(name, opts)
    local sampler
    for _, s in ipairs(self.def.samplers) do
        if s.name == name and s.source then sampler = s end
    end
    if not sampler then return nil, "no sampler '" .. tostring(name) .. "' reads a source" end
    local ok, plan, field, at = call(self.sandbox, "plan", self.source, "@" .. self.path,
                                     opts, {})
    if not ok then return nil, self:failure(plan, field, at)[1] end
    local fetched = {}
    if plan.failed[sampler.source] then
        return nil, "source '" .. sampler.source .. "' failed: " .. plan.failed[sampler.source]
    end
    for _, spec in ipairs(plan.fetch) do
        if spec.name == sampler.source then
            fetched = (opts.read or sources.read_all)({ spec }, defsources.BUDGET / 1000)
        end
    end
    if fetched[sampler.source] == nil then
        return nil, "source '" .. sampler.source .. "' waits for another source"
    end
    local v
    ok, v, field, at = call(self.sandbox, "sample", self.source, "@" .. self.path, opts,
                            fetched, name)
    if not ok then return nil, self:failure(v, field, at)[1] end
    return v
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
