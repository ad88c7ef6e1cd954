-- Sources inside the sandbox: the options of each source computed from ctx (settings,
-- the product's process, the sources read before it) for the host to read, and what the
-- host read turned into values for field functions: JSON, YAML, TOML, INI and env files,
-- Prometheus text, binary numbers. Everything is parsed here, under the sandbox's limits,
-- on first use in a build; a source that failed fails the fields that read it.
local core = require("phonehome.core")
local defsources = require("phonehome.definition.sources")
local prometheus = require("phonehome.sources.prometheus")
local schedule = require("phonehome.definition.schedule")
local settings = require("phonehome.definition.settings")
local toml = require("phonehome.sources.toml")

local M = {}

-- Raised by ctx.sources.NAME while planning, when NAME has not been read yet.
local PENDING = setmetatable({}, { __tostring = function() return "(source not read yet)" end })

-- The environment file syntax of systemd and docker: NAME=VALUE, `export`, # comments,
-- single quotes literal, double quotes with backslash escapes.
local function parse_env(text)
    local t, n = {}, 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        line = line:gsub("\r$", "")
        if not line:match("^%s*$") and not line:match("^%s*#") then
            local name, rest = line:match("^%s*export%s+([%a_][%w_]*)%s*=(.*)$")
            if not name then name, rest = line:match("^%s*([%a_][%w_]*)%s*=(.*)$") end
            if not name then return nil, "line " .. n .. ": not NAME=VALUE" end
            rest = rest:gsub("^%s+", "")
            local q = rest:sub(1, 1)
            if q == "'" or q == '"' then
                local close = rest:find(q, 2, true)
                while q == '"' and close and rest:sub(close - 1, close - 1) == "\\" do
                    close = rest:find(q, close + 1, true)
                end
                if not close then return nil, "line " .. n .. ": unterminated quote" end
                local v = rest:sub(2, close - 1)
                if q == '"' then
                    v = v:gsub("\\(.)", function(c) return ({ n = "\n", t = "\t" })[c] or c end)
                end
                t[name] = v
            else
                t[name] = (rest:gsub("%s+#.*$", ""):gsub("%s+$", ""))
            end
        end
    end
    return t
end

-- A parsed document as plain tables, its null (YAML's, JSON's) as nil.
local function without_null(v, null)
    if v == null then return nil end
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do out[k] = without_null(x, null) end
    return out
end

local NULL = {}

-- A copy of an option's value as plain data for the host; raises on anything else.
local function plain(v, depth)
    if type(v) ~= "table" then
        if type(v) == "function" or type(v) == "userdata" or type(v) == "thread" then
            error("a " .. type(v) .. " cannot be given to the host", 0)
        end
        return v
    end
    if depth > 20 then error("nested deeper than 20 tables", 0) end
    local out = {}
    for k, x in pairs(v) do
        if type(k) ~= "string" and math.type(k) ~= "integer" then
            error("a key of type " .. type(k) .. " cannot be given to the host", 0)
        end
        out[k] = plain(x, depth + 1)
    end
    return out
end

local function parse_ini(text)
    local inifile = require("inifile")
    local ok, t = pcall(inifile.parse, text .. "\n", "memory")
    if not ok then return nil, tostring(t) end
    return t
end

local parsers = {
    json = function(text)
        local v, err = core.json_strict(text, NULL)
        if v == nil then return nil, err end
        return without_null(v, NULL)
    end,
    yaml = function(text)
        local lyaml = require("lyaml")
        local ok, v = pcall(lyaml.load, text)
        if not ok then return nil, tostring(v):gsub("^.-:%d+: ", "") end
        return without_null(v, lyaml.null) or {}
    end,
    toml = toml.parse,
    ini = parse_ini,
    env = parse_env,
    prometheus = prometheus.parse,
}

local number_formats = { int64le = "<i8", uint64le = "<I8", int32le = "<i4", uint32le = "<I4" }

-- The value a field sees of a source read successfully (r.value as the host gives it).
local function view(s, r)
    if r.missing then return nil end  -- an optional file that does not exist
    local v = r.value
    if s.kind == "sql" then
        local t = { engine = v.engine, version = v.version }
        return setmetatable(t, { __index = function(_, q)
            local res = v.queries[q]
            if res == nil then error("source '" .. s.name .. "' has no query '" .. tostring(q)
                .. "'", 2) end
            if res.error then error("source '" .. s.name .. "': query '" .. q .. "': "
                .. res.error, 2) end
            return res.rows
        end })
    end
    if s.kind == "file" then
        local fmt = number_formats[r.format]
        if fmt then
            if #v < string.packsize(fmt) then
                error("source '" .. s.name .. "': " .. r.path .. ": " .. #v .. " bytes, "
                    .. string.packsize(fmt) .. " needed for " .. r.format, 0)
            end
            return (string.unpack(fmt, v))
        end
        return v
    end
    local kind = s.kind
    if kind == "http" then
        if r.format == "text" then return v end
        kind = "json"
    end
    if r.format == "layers" then
        -- top-level keys merged, a later file's winning (Synapse's rule for its
        -- --config-path files)
        local merged = {}
        for i, text in ipairs(v) do
            local doc, err = parsers[kind](text)
            if type(doc) ~= "table" or doc[1] ~= nil then
                error("source '" .. s.name .. "': " .. r.paths[i] .. ": "
                    .. (doc == nil and tostring(err) or "not a mapping of keys"), 0)
            end
            for k, x in pairs(doc) do merged[k] = x end
        end
        return merged
    end
    local parsed, err = parsers[kind](v)
    if parsed == nil then
        error("source '" .. s.name .. "': " .. (r.path or r.url or "") .. ": " .. tostring(err), 0)
    end
    return parsed
end

-- proxy(def, fetched, opts) -> ctx.sources: NAME gives the source's value, parsed once.
-- opts.allowed: the names the caller may read (a field's declared sources), or nil for
-- all; opts.planning: a source not read yet raises PENDING; opts.failed(name): called
-- before the error of a source that failed is raised.
function M.proxy(def, fetched, opts)
    local cache = {}
    return setmetatable({}, { __metatable = false, __index = function(_, name)
        local s = def.sources_by_name[name]
        if not s then error("unknown source " .. string.format("%q", tostring(name)), 2) end
        local allowed = opts.allowed and opts.allowed()
        if allowed and not allowed[name] then
            error("reads source '" .. name .. "' without declaring it (source = \"" .. name
                .. "\")", 2)
        end
        local r = fetched[name]
        if r == nil then
            if opts.planning then error(PENDING, 0) end
            if opts.failed then opts.failed(name) end
            error("source '" .. name .. "' was not read", 2)
        end
        if not r.ok then
            if opts.failed then opts.failed(name) end
            error("source '" .. name .. "' failed: " .. tostring(r.error), 2)
        end
        if cache[name] == nil then
            local ok, v = pcall(view, s, r)
            if not ok then
                if opts.failed then opts.failed(name) end
                error(v, 2)
            end
            cache[name] = { v }
        end
        return cache[name][1]
    end })
end

local function value_at(t, key)
    for part in key:gmatch("[^%.]+") do
        if type(t) ~= "table" then return nil end
        t = t[part]
    end
    return t
end

-- with_settings(def, typed, given, fetched, warn) -> the settings of a build: typed (from
-- --set, --config and defaults) with each setting declared with a source and not given
-- replaced by the value at its key in that config file, when present and of its type.
function M.with_settings(def, typed, given, fetched, warn)
    local out = {}
    for k, v in pairs(typed) do out[k] = v end
    local views = M.proxy(def, fetched, {})
    for _, s in ipairs(def.settings) do
        if s.source and not given[s.name] and fetched[s.source] then
            local ok, data = pcall(function() return views[s.source] end)
            local v = ok and value_at(data, s.key)
            if not ok then
                warn("setting '" .. s.name .. "': " .. tostring(data))
            elseif v ~= nil and s.type == "number" and math.type(v) == "integer" then
                out[s.name] = v + 0.0
            elseif v ~= nil and settings.value_ok(s.type, v) then
                out[s.name] = v
            elseif v ~= nil then
                warn("setting '" .. s.name .. "': " .. s.key .. " in source '" .. s.source
                    .. "' is not a " .. s.type .. "; the default is used")
            end
        end
    end
    return out
end

-- The sources read before the opt-out decision: those of the settings its channels read,
-- and of those the schedule and the start-up notice take (a product's own config may time
-- its reports or silence its notice).
local function early_sources(def)
    local names = schedule.setting_names(def.schedule)
    for _, c in ipairs(def.optout.settings) do names[#names + 1] = c.name end
    for name in pairs(def.disclosure.quiet_when or {}) do names[#names + 1] = name end
    local need = {}
    for _, name in ipairs(names) do
        local s = def.settings_by_name[name]
        if s and s.source then need[s.source] = true end
    end
    return need
end

-- plan(def, ctx, fetched) -> { fetch = { spec, ... }, failed = { name = message },
-- waiting = bool (sources wait for others still), early_pending = bool (an early source,
-- see early_sources, is still to be read) }: what the host reads next. ctx.sources must
-- be a planning proxy.
function M.plan(def, ctx, fetched)
    local out = { fetch = {}, failed = {}, waiting = false }
    local early = early_sources(def)
    for _, s in ipairs(def.sources) do
        if fetched[s.name] == nil then
            local spec = { name = s.name, kind = s.kind, timeout = s.timeout,
                           optional = s.optional, early = early[s.name] or nil }
            local state = "ready"
            for key in pairs(defsources.kinds[s.kind]) do
                local v = s[key]
                if type(v) == "function" and state == "ready" then
                    local ok, res = pcall(v, ctx)
                    if not ok and res == PENDING then
                        state = "waiting"
                    elseif not ok then
                        state = "failed"
                        out.failed[s.name] = "option '" .. key .. "': " .. tostring(res)
                    elseif res ~= nil and defsources.option_problem(s.kind, key, res) then
                        state = "failed"
                        out.failed[s.name] = defsources.option_problem(s.kind, key, res)
                    end
                    v = res
                end
                spec[key] = v
            end
            if state == "ready" and s.kind == "sql" then
                for q in pairs(spec.queries) do
                    if q == "engine" or q == "version" then
                        state = "failed"
                        out.failed[s.name] = "a query may not be named '" .. q .. "'"
                    end
                end
            end
            if state == "ready" then
                local ok, copy = pcall(plain, spec, 0)
                if ok then
                    out.fetch[#out.fetch + 1] = copy
                else
                    state = "failed"
                    out.failed[s.name] = tostring(copy)
                end
            end
            if state == "waiting" then out.waiting = true end
            if state ~= "failed" and early[s.name] then out.early_pending = true end
        end
    end
    if #out.fetch == 0 and next(out.failed) == nil and out.waiting then
        -- nothing can be read, yet some wait: they wait for each other
        for _, s in ipairs(def.sources) do
            if fetched[s.name] == nil then
                out.failed[s.name] = "waits for a source that waits for it"
            end
        end
        out.waiting = false
    end
    return out
end

M.PENDING = PENDING
M.parse_env = parse_env

return M
