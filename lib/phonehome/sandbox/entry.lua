-- The trusted side of a product's sandbox, run inside the product's own Lua state:
-- loads the script in its allow-listed environment, checks its definition and builds its
-- report on request. The control state calls these functions through sb:call(name, ...)
-- (see sandbox/init.lua); only plain values cross.
-- first: these keep debug.getinfo, for the lines of declarations
local where = require("phonehome.sandbox.where")
require("phonehome.fields")
local build = require("phonehome.sandbox.build")
local core = require("phonehome.core")
local definition = require("phonehome.definition")
local env = require("phonehome.sandbox.env")
local environment = require("phonehome.definition.environment")
local metrics = require("phonehome.sandbox.metrics")
local probes = require("phonehome.sandbox.probes")
local samples = require("phonehome.sandbox.samples")
local sources = require("phonehome.sandbox.sources")

-- Nothing in the sandbox may reach the debug library or the string metatable.
debug = nil            -- luacheck: ignore 111 121
package.loaded.debug = nil
getmetatable("").__metatable = false

local M = {}

local state = {}       -- the positions of the loaded script, its checked definition

-- load(source, chunkname) -> description of the definition; raises a message of one
-- "file:line: problem" line per problem.
function M.load(source, chunkname)
    local pos = where.new(chunkname, source)
    state = { where = function(path, line) return pos:at(path, line) end }
    local chunk, err = load(source, chunkname, "t", env.new())
    if not chunk then error(err, 0) end
    local def = chunk()
    local problems = {}
    if type(def) == "table" and type(def.fields) == "table" then pos:declare(def.fields) end
    definition.check(def, function(path, msg)
        problems[#problems + 1] = state.where(path) .. ": " .. msg
    end)
    local base = chunkname:match("([^/]+)%.lua$")
    if type(def) == "table" and type(def.name) == "string" and base and def.name ~= base then
        problems[#problems + 1] = state.where("name") .. ": name '" .. def.name
            .. "' does not match the file name '" .. base .. ".lua'"
    end
    if #problems > 0 then error(table.concat(problems, "\n"), 0) end
    state.def = def
    return definition.describe(def)
end

-- The ctx field functions and source options see. opts: settings (typed, defaults
-- applied), settings_given (names given with --set or --config), pid, instance_id,
-- session_id, last_sent, previous (the product's previous report, decoded, for figures
-- counted between reports), previous_process ({ pid, start_time, time, cpu } of the
-- target at the previous report), samples (the window the daemon's samplers hold, see
-- sandbox/samples.lua), metrics (the window of StatsD metrics, see sandbox/metrics.lua),
-- marks (ctx.increase's values at the last report delivered), pid_error (why the target
-- process is not known: every use of ctx.process fails). fetched: what the host read of
-- the sources, by name. Returns ctx and the values given to ctx.increase.
local function context(def, opts, fetched, proxy_opts, warn)
    local marks, base = {}, opts.marks or {}
    local ctx = {
        product = def.name,
        settings = sources.with_settings(def, opts.settings or {}, opts.settings_given or {},
                                         fetched, warn),
        instance_id = opts.instance_id,
        session_id = opts.session_id,
        last_sent = opts.last_sent,
        previous = opts.previous,
        previous_process = opts.previous_process,
        now = core.time(),
        system = probes.system,
        getenv = environment.reader(def, core.getenv),
        uuid = core.uuid,
        sources = sources.proxy(def, fetched, proxy_opts),
        samples = samples.view(def, opts.samples),
        metrics = metrics.view(def, opts.metrics),
        -- increase(name, value [, restarted]) -> how much a counter grew since the last
        -- report delivered: value less the value given under name then; all of value when
        -- there was none, when it is less (the counter started again) or when restarted
        increase = function(name, value, restarted)
            if type(name) ~= "string" or math.type(value) == nil or value ~= value
                or math.abs(value) == math.huge then
                error("increase: expected a name and a finite number", 2)
            end
            marks[name] = value
            local was = base[name]
            if restarted or type(was) ~= "number" or value < was then return value end
            return value - was
        end,
    }
    -- the target process is read when a field first asks for it: when it is gone, only
    -- the fields that use it fail
    setmetatable(ctx, { __metatable = false, __index = function(t, k)
        if k ~= "process" then return nil end
        if opts.pid_error then
            -- like a source that cannot be read: a dry build says nothing of it
            if proxy_opts.failed then proxy_opts.failed("process") end
            error(opts.pid_error, 2)
        end
        local p = probes.process(opts.pid, def.process)
        rawset(t, "process", p)
        return p
    end })
    return ctx, marks
end

-- plan(source, chunkname, opts, fetched) -> what the host reads next (sources.plan),
-- with the settings as read so far: loads the script, then computes the options of the
-- sources not read yet.
function M.plan(source, chunkname, opts, fetched)
    M.load(source, chunkname)
    local warnings = {}
    local ctx = context(state.def, opts, fetched, { planning = true },
                        function(w) warnings[#warnings + 1] = w end)
    local out = sources.plan(state.def, ctx, fetched)
    out.settings, out.warnings = ctx.settings, warnings
    return out
end

-- build(source, chunkname, opts, fetched) -> json, warnings, { times, settings } | nil,
-- errors: loads the
-- script, then builds its report from what was read of its sources. Each call runs in a
-- process of its own, on a copy of a state that has never run the script, so the script
-- is loaded again every time. opts as for context, and dry: a check that read no source
-- (a reload's): a field failing for want of a source is a warning, not an error.
function M.build(source, chunkname, opts, fetched)
    M.load(source, chunkname)
    local def = state.def
    build.current = nil
    local warnings = {}
    local ctx, marks = context(def, opts, fetched or {}, {
        allowed = function() return build.current and build.current.sources or {} end,
        failed = function() if build.current then build.current.source_failed = true end end,
    }, function(w) warnings[#warnings + 1] = state.where("settings") .. ": " .. w end)
    local identity = def.identity and def.identity.value
    if identity then
        local current = { path = "identity", sources = build.allowed(def.identity) }
        build.current = current
        local ok, id = pcall(identity, ctx)
        build.current = nil
        if ok and type(id) == "string" and id:match("^[%w%-_.:]+$") and #id <= 200 then
            ctx.instance_id = id
        elseif (ok and id == nil) or (opts.dry and current.source_failed) then -- luacheck: ignore
            -- the product has none (yet), or a check read nothing of it: phonehome's own id
            -- is used, silently
        else
            -- never the script's __tostring: only strings and numbers are shown
            local shown = (type(id) == "string" or type(id) == "number") and tostring(id)
                or ("a " .. type(id))
            warnings[#warnings + 1] = state.where("identity") .. ": the product's instance id "
                .. "could not be read (" .. (ok and "got " or "") .. shown
                .. "); phonehome's own is used"
        end
    end
    -- the settings as built with, copied before any field function could change them
    local function copy(v)
        if type(v) ~= "table" then return v end
        local c = {}
        for k, x in pairs(v) do c[k] = copy(x) end
        return c
    end
    local used = copy(ctx.settings)
    local body, problems, explain = build.build(def, ctx, function(path, line)
        return state.where("fields." .. path, line)
    end, opts.dry)
    if body then
        table.move(problems, 1, #problems, #warnings + 1, warnings)
        return body, warnings, { times = explain, settings = used, marks = marks }
    end
    return body, problems
end

-- sample(source, chunkname, opts, fetched, name) -> the reading of sampler name: its
-- value function on what was read of its source (a finite number, or nil for none this
-- time); an error names the sampler's file:line.
function M.sample(source, chunkname, opts, fetched, name)
    M.load(source, chunkname)
    local def, sampler = state.def, nil
    for _, s in ipairs(def.samplers) do
        if s.name == name and s.source then sampler = s end
    end
    if not sampler then error("no sampler '" .. tostring(name) .. "' reads a source", 0) end
    local ctx = context(def, opts, fetched or {}, {
        allowed = function() return build.allowed(sampler) end,
    }, function() end)
    local at = state.where("samplers." .. name)
    local ok, v = pcall(sampler.value, ctx)
    if not ok then error(at .. ": " .. tostring(v), 0) end
    if v ~= nil and (math.type(v) == nil or v ~= v or math.abs(v) == math.huge) then
        error(at .. ": value must give a finite number or nil, got "
            .. (type(v) == "number" and tostring(v) or "a " .. type(v)), 0)
    end
    return v
end

-- current() -> the path and "file:line" of the field whose computation was
-- interrupted, if any.
function M.current()
    local c = build.current
    if c then return c.path, state.where("fields." .. c.path, c.line) end
end

-- read_data(source, chunkname) -> the table a data-only Lua file returns or assigns.
function M.read_data(source, chunkname)
    local globals = {}
    local chunk, err = load(source, chunkname, "t", globals)
    if not chunk then error(err, 0) end
    local t = chunk()
    if t == nil then t = globals end
    if type(t) ~= "table" then error(chunkname:gsub("^@", "") .. ": must hold a table", 0) end
    return t
end

return M
