-- The sources section of a definition: what a script reads from the product it reports
-- on (its database, HTTP API, metrics, config files, files and process), declared so that
-- `docs` can list them and nothing undeclared can be reached. Each option is a constant
-- or a function(ctx) computed before the source is read, from settings, the product's
-- process and the sources read before it.
local duration = require("phonehome.duration")
local schema = require("phonehome.definition.schema")

local M = {}

M.DEFAULT_TIMEOUT = 10000      -- ms one source may take
M.BUDGET = 30000               -- ms all the sources of one report may take
M.DEFAULT_MAX_BYTES = 1048576  -- bytes of an answer or a file

-- The options of each kind and the type a constant must have ("function" is always
-- allowed). Config-file kinds hold data a setting can be read from.
local option_types = {
    sql = { database = { "string", "table" }, queries = { "table" }, params = { "table" },
            password_file = { "string" }, max_rows = { "integer" } },
    http = { url = { "string" }, method = { "string" }, headers = { "table" },
             body = { "string", "table" }, auth = { "table" }, format = { "string" },
             max_bytes = { "integer" }, ca_file = { "string" } },
    prometheus = { url = { "string" }, headers = { "table" }, auth = { "table" },
                   max_bytes = { "integer" }, ca_file = { "string" } },
    file = { path = { "string" }, format = { "string" }, offset = { "integer" },
             length = { "integer" }, max_bytes = { "integer" } },
}
M.config_kinds = { yaml = true, toml = true, ini = true, env = true, json = true }
for kind in pairs(M.config_kinds) do
    -- a list of paths reads a config in layers (sources/init.lua)
    option_types[kind] = { path = { "string", "table" }, max_bytes = { "integer" } }
end
M.kinds = option_types
M.MAX_LAYERS = 64

-- What each kind needs before it can be read.
local required = { sql = { "database", "queries" }, http = { "url" }, prometheus = { "url" },
                   file = { "path" } }
for kind in pairs(M.config_kinds) do required[kind] = { "path" } end

local common = { name = true, kind = true, description = true, timeout = true, line = true,
                 optional = true }

local formats = { file = { text = true, bytes = true, int64le = true, uint64le = true,
                           int32le = true, uint32le = true },
                  http = { json = true, text = true } }

local function type_ok(v, types)
    for _, t in ipairs(types) do
        if t == "integer" and math.type(v) == "integer" then return true end
        if type(v) == t then return true end
    end
    return false
end

-- option_problem(kind, key, v) -> what is wrong with a value of an option (a constant or
-- a function's result), or nil.
function M.option_problem(kind, key, v)
    local types = option_types[kind][key]
    if not type_ok(v, types) then
        return "option '" .. key .. "' must be a " .. table.concat(types, " or ") .. ", got "
            .. schema.describe(v)
    end
    if key == "method" and v ~= "GET" and v ~= "POST" then
        return "method must be \"GET\" or \"POST\""
    end
    if key == "format" and not formats[kind][v] then
        local names = {}
        for f in pairs(formats[kind]) do names[#names + 1] = f end
        table.sort(names)
        return "format must be one of " .. table.concat(names, ", ")
    end
    if (key == "max_bytes" or key == "max_rows" or key == "length") and v <= 0 then
        return key .. " must be positive"
    end
    if key == "offset" and v < 0 then return "offset must not be negative" end
    if key == "path" and type(v) == "table" then
        if #v == 0 or #v > M.MAX_LAYERS then
            return "a list of paths must hold 1 to " .. M.MAX_LAYERS .. " paths"
        end
        for i, p in pairs(v) do
            if math.type(i) ~= "integer" or i < 1 or i > #v or type(p) ~= "string" then
                return "path must be a string or a list of strings"
            end
        end
    end
    return nil
end

local function check_one(def, s, i, problem)
    local where = "sources." .. (type(s) == "table" and tostring(s.name) or i)
    if type(s) ~= "table" then return problem(where, "a source must be a table") end
    if type(s.name) ~= "string" or not s.name:match("^[%a_][%w_]*$") then
        problem(where, "a source needs a name (letters, digits and _)")
    elseif def.sources_by_name[s.name] then
        problem(where, "source declared twice")
    end
    if type(s.description) ~= "string" or s.description == "" then
        problem(where, "source has no description")
    end
    local kinds = {}
    for k in pairs(option_types) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    if not option_types[s.kind] then
        return problem(where, "kind must be one of " .. table.concat(kinds, ", ") .. ", got "
            .. schema.describe(s.kind))
    end
    for k in pairs(s) do
        if not common[k] and not option_types[s.kind][k] then
            problem(where .. "." .. tostring(k), "unknown key '" .. tostring(k) .. "' for a "
                .. s.kind .. " source")
        end
    end
    for key, v in pairs(s) do
        if option_types[s.kind][key] and type(v) ~= "function" then
            local p = M.option_problem(s.kind, key, v)
            if p then problem(where .. "." .. key, p) end
        end
    end
    for _, key in ipairs(required[s.kind]) do
        if s[key] == nil then problem(where, "a " .. s.kind .. " source needs '" .. key .. "'") end
    end
    if s.timeout ~= nil then
        local ms, err = duration.parse(s.timeout, true, "timeout")
        if not ms then problem(where .. ".timeout", err) else s.timeout = ms end
    end
    s.timeout = s.timeout or M.DEFAULT_TIMEOUT
    if s.optional ~= nil and (type(s.optional) ~= "boolean"
                              or not (s.kind == "file" or M.config_kinds[s.kind])) then
        problem(where .. ".optional", "optional must be a boolean, and only a file or "
            .. "config-file source can be optional (a file that may not exist)")
    end
    if type(s.name) == "string" then def.sources_by_name[s.name] = s end
end

-- check(def, problem): the sources list, indexed by name in def.sources_by_name.
function M.check(def, problem)
    def.sources_by_name = {}
    if def.sources == nil then def.sources = {} end
    if type(def.sources) ~= "table" then
        problem("sources", "sources must be a list of source declarations")
        def.sources = {}
    end
    for i, s in ipairs(def.sources) do check_one(def, s, i, problem) end
end

-- The names a field reads: its `source` or its `sources`.
function M.used_by(f)
    if type(f.sources) == "table" then return f.sources end
    if f.source ~= nil then return { f.source } end
    return {}
end

-- check_uses(def, problem): every field, setting and identity naming a source names a
-- declared one.
function M.check_uses(def, problem)
    local function walk(list, prefix)
        for _, f in ipairs(list or {}) do
            if type(f) == "table" then
                local path = prefix .. tostring(f.name)
                if f.source ~= nil and f.sources ~= nil then
                    problem(path, "a field declares 'source' or 'sources', not both")
                end
                if f.sources ~= nil and type(f.sources) ~= "table" then
                    problem(path, "sources must be a list of source names")
                else
                    for _, name in ipairs(M.used_by(f)) do
                        if not def.sources_by_name[name] then
                            problem(path, "unknown source " .. schema.describe(name))
                        end
                    end
                end
                if type(f.fields) == "table" then walk(f.fields, path .. ".") end
            end
        end
    end
    walk(def.fields, "fields.")
    if type(def.identity) == "table" then
        for _, name in ipairs(M.used_by(def.identity)) do
            if not def.sources_by_name[name] then
                problem("identity", "unknown source " .. schema.describe(name))
            end
        end
    end
    for _, s in ipairs(def.settings or {}) do
        if type(s) == "table" and s.source ~= nil then
            local src = def.sources_by_name[s.source]
            if not src or not M.config_kinds[src.kind] then
                problem("settings." .. tostring(s.name), "setting source "
                    .. schema.describe(s.source) .. " is not a declared config-file source "
                    .. "(yaml, toml, ini, env or json)")
            end
            if type(s.key) ~= "string" or s.key == "" then
                problem("settings." .. tostring(s.name), "a setting read from a source needs "
                    .. "a key (a dotted path such as \"caches.global_factor\")")
            end
        end
    end
end

-- The password of a URL's user information, masked.
function M.redact_url(url)
    return (url:gsub("^(%a[%w+.-]*://[^/@:]*):[^/@]*@", "%1:***@"))
end

-- redact(key, v) -> an option's value as it may be shown: credentials masked.
function M.redact(key, v)
    if type(v) == "string" and (key == "url" or key == "database") then
        return M.redact_url(v)
    end
    if type(v) == "table" and (key == "auth" or key == "database" or key == "headers") then
        local out = {}
        for k, x in pairs(v) do
            local secret = key ~= "database" or k == "password"
            if key == "headers" and type(x) == "string" then
                secret = x:lower():match("^%s*authorization%s*:") ~= nil
            end
            if key == "auth" and type(x) == "table" then
                out[k] = { user = type(x.user) == "string" and x.user or nil,
                           password = "(secret)" }
            else
                out[k] = secret and "(secret)" or x
            end
        end
        return out
    end
    return v
end

-- describe(def) -> the sources as plain data: each one's options, a function shown as
-- "(computed)", credentials masked, and the fields that read it.
function M.describe(def)
    local users = {}
    local function walk(list, prefix)
        for _, f in ipairs(list or {}) do
            for _, name in ipairs(M.used_by(f)) do
                users[name] = users[name] or {}
                table.insert(users[name], prefix .. f.name)
            end
            if f.fields then walk(f.fields, prefix .. f.name .. ".") end
        end
    end
    walk(def.fields, "")
    if def.identity then
        for _, name in ipairs(M.used_by(def.identity)) do
            users[name] = users[name] or {}
            table.insert(users[name], "identity")
        end
    end
    for _, s in ipairs(def.settings or {}) do
        if s.source then
            users[s.source] = users[s.source] or {}
            table.insert(users[s.source], "setting " .. s.name .. " (" .. s.key .. ")")
        end
    end
    local out = {}
    for i, s in ipairs(def.sources) do
        local d = { name = s.name, kind = s.kind, description = s.description,
                    timeout = s.timeout, optional = s.optional or false,
                    used_by = users[s.name] or {}, options = {} }
        for key in pairs(option_types[s.kind]) do
            local v = s[key]
            if type(v) == "function" then v = "(computed)" end
            d.options[key] = M.redact(key, v)
        end
        out[i] = d
    end
    return out
end

return M
