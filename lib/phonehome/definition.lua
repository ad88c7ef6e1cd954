-- A product's report definition: checks every part of what a script returns and
-- normalises it (durations in ms, settings by name), collecting every problem.
local schema = require("phonehome.schema")
local duration = require("phonehome.duration")
local optout = require("phonehome.optout")
local schedule = require("phonehome.schedule")

local M = {}

local top_keys = {
    name = true, description = true, version = true, endpoint = true, method = true,
    format = true, canonical = true, schedule = true, optout = true, disclosure = true,
    settings = true, fields = true, identity = true, delivery = true, last_report = true,
}
local delivery_keys = { retries = true, retry_on = true, backoff = true, timeout = true,
                        connect_timeout = true, spool_reports = true, spool_bytes = true,
                        log_report = true }
local setting_keys = { name = true, type = true, default = true, description = true }
M.setting_types = { string = true, int = true, number = true, bool = true,
                    array = true, map = true }

-- Checks a plain value against a setting type.
function M.setting_value_ok(stype, v)
    if stype == "int" then return math.type(v) == "integer" end
    if stype == "number" then return type(v) == "number" end
    if stype == "bool" then return type(v) == "boolean" end
    if stype == "string" then return type(v) == "string" end
    return type(v) == "table"
end

-- check(def, problem, linedefined) -> def normalised. problem(where, message) gets a
-- path such as "schedule.first" or "fields.instance.uuid" for each problem.
function M.check(def, problem)
    if type(def) ~= "table" then
        problem("", "the script must return a definition table, got " .. type(def))
        return nil
    end
    schema.unknown_keys(def, top_keys, problem, "", true)
    for _, k in ipairs({ "name", "description", "endpoint" }) do
        if type(def[k]) ~= "string" or def[k] == "" then
            problem(k, "'" .. k .. "' must be a non-empty string")
        end
    end
    if type(def.name) == "string" and not def.name:match("^[%l%d_%-]+$") then
        problem("name", "name must be lower-case letters, digits, - and _")
    end
    if type(def.endpoint) == "string" and not def.endpoint:match("^https?://[^/%s]+") then
        problem("endpoint", "endpoint must be an http:// or https:// URL")
    end
    def.method = def.method or "POST"
    if def.method ~= "POST" and def.method ~= "PUT" then
        problem("method", "method must be \"POST\" or \"PUT\"")
    end
    def.format = def.format or "json"
    if def.format ~= "json" and def.format ~= "ga4" then
        problem("format", "format must be \"json\" or \"ga4\"")
    end
    if def.canonical ~= nil and type(def.canonical) ~= "boolean" then
        problem("canonical", "canonical must be a boolean")
    end
    if def.version ~= nil and type(def.version) ~= "string" then
        problem("version", "version must be a string")
    end

    M.check_settings(def, problem)
    M.check_fields(def, problem)
    M.add_implicit_settings(def)
    schedule.check(def, problem)
    optout.check(def, problem)
    M.check_delivery(def, problem)
    if def.last_report ~= nil and (type(def.last_report) ~= "string" or def.last_report:find("/")
        or def.last_report:match("^%.")) then
        problem("last_report", "last_report must be a plain file name")
    end
    def.last_report = def.last_report or (tostring(def.name) .. ".last.json")

    local d = def.disclosure
    if type(d) ~= "table" or type(d.on) ~= "string" or type(d.off) ~= "string" then
        problem("disclosure", "disclosure must be { on = text, off = text }")
    else
        schema.unknown_keys(d, { on = true, off = true, quiet_when = true }, problem, "disclosure")
        -- settings whose values silence the notice at start (MongooseIM's report = true)
        for name in pairs(type(d.quiet_when) == "table" and d.quiet_when or {}) do
            if not def.settings_by_name[name] then
                problem("disclosure.quiet_when", "'" .. tostring(name) .. "' is not a declared setting")
            end
        end
    end
    if def.identity ~= nil then
        local id = def.identity
        if type(id) ~= "table" then
            problem("identity", "identity must be { file = \"name\", field = \"dotted.path\" }")
        else
            schema.unknown_keys(id, { file = true, field = true }, problem, "identity")
            if id.file ~= nil and (type(id.file) ~= "string" or id.file:find("/") or id.file:match("^%.")) then
                problem("identity", "identity.file must be a plain file name")
            end
            if id.field ~= nil and not M.field_at(def.fields, id.field) then
                problem("identity", "identity.field " .. schema.describe(id.field)
                    .. " is not a declared string field")
            end
        end
    end
    return def
end

-- The declaration of a string field at a dotted path ("instance.uuid"), if any.
function M.field_at(list, path)
    if type(path) ~= "string" then return nil end
    local f
    for part in path:gmatch("[^%.]+") do
        if type(list) ~= "table" then return nil end
        f = nil
        for _, g in ipairs(list) do
            if type(g) == "table" and g.name == part then f = g end
        end
        if not f then return nil end
        list = f.fields
    end
    return f and f.type == "string" and f or nil
end

function M.check_settings(def, problem)
    local list = def.settings or {}
    if type(list) ~= "table" then
        problem("settings", "settings must be a list")
        list = {}
    end
    def.settings = list
    def.settings_by_name = {}
    for i, s in ipairs(list) do
        local where = "settings." .. (type(s) == "table" and tostring(s.name) or i)
        if type(s) ~= "table" then
            problem(where, "a setting must be a table")
        else
            schema.unknown_keys(s, setting_keys, problem, where)
            if type(s.name) ~= "string" or not s.name:match("^[%w_%.]+$") then
                problem(where, "a setting needs a name (letters, digits, _ and .)")
            elseif def.settings_by_name[s.name] then
                problem(where, "setting declared twice")
            end
            if not M.setting_types[s.type] then
                problem(where, "setting type must be string, int, number, bool, array or map")
            elseif s.default ~= nil and not M.setting_value_ok(s.type, s.default) then
                problem(where, "default " .. schema.describe(s.default) .. " is not a " .. s.type)
            end
            if type(s.description) ~= "string" or s.description == "" then
                problem(where, "setting has no description")
            end
            if type(s.name) == "string" then def.settings_by_name[s.name] = s end
        end
    end
end

local function setting_type_of(field_type)
    if field_type == "object" then return "map" end
    if field_type == "scalar" then return "string" end
    return field_type
end

-- Fields may name a declared setting (setting = "name") or declare one in place
-- (setting = { default = ... }), which is named after the field's dotted path.
local function resolve_settings(def, list, prefix, problem)
    for _, f in ipairs(list) do
        if type(f) == "table" and type(f.name) == "string" then
            local path = prefix == "" and f.name or (prefix .. "." .. f.name)
            if type(f.setting) == "table" then
                for k in pairs(f.setting) do
                    if k ~= "default" then
                        problem("fields." .. path, "an in-place setting takes only 'default'")
                    end
                end
                local s = { name = path, type = setting_type_of(f.type), default = f.setting.default,
                            description = f.description }
                if def.settings_by_name[path] then
                    problem("fields." .. path, "setting '" .. path .. "' already declared")
                elseif s.default ~= nil and M.setting_types[s.type]
                    and not M.setting_value_ok(s.type, s.default) then
                    problem("fields." .. path, "default " .. schema.describe(s.default)
                        .. " is not a " .. s.type)
                end
                def.settings[#def.settings + 1] = s
                def.settings_by_name[path] = s
                f.setting = path
            elseif f.setting ~= nil then
                if type(f.setting) ~= "string" or not def.settings_by_name[f.setting] then
                    problem("fields." .. path, "setting " .. schema.describe(f.setting)
                        .. " is not declared in settings")
                end
            end
            if f.value ~= nil and f.type ~= "object" and type(f.value) ~= "function"
                and type(f.value) ~= "table" and not schema.types[type(f.value)] then
                problem("fields." .. path, "value must be a function or a constant")
            end
            if f.value == nil and f.setting == nil and f.type ~= "object" then
                problem("fields." .. path, "field has no source: give it a value or a setting")
            end
            if type(f.fields) == "table" and f.value == nil and f.setting == nil then
                resolve_settings(def, f.fields, path, problem)
            end
        end
    end
end

function M.check_fields(def, problem)
    if type(def.fields) ~= "table" or next(def.fields) == nil then
        problem("fields", "a definition needs a non-empty list of fields")
        def.fields = {}
        return
    end
    schema.declare_list(def.fields, "", function(path, msg) problem("fields." .. path, msg) end)
    resolve_settings(def, def.fields, "", problem)
end

-- Settings every product has, for the operator: where reports go, and whether plain
-- http may leave the machine.
local implicit_settings = {
    { name = "endpoint", type = "string",
      description = "Where reports go instead of the script's endpoint (an http(s) URL)." },
    { name = "allow_http", type = "bool", default = false,
      description = "Allow plain http to hosts other than loopback." },
    { name = "ca_file", type = "string",
      description = "A PEM bundle of the CAs to verify the endpoint with, instead of the system's." },
}

function M.add_implicit_settings(def)
    for _, s in ipairs(implicit_settings) do
        if not def.settings_by_name[s.name] then
            local copy = {}
            for k, v in pairs(s) do copy[k] = v end
            def.settings[#def.settings + 1] = copy
            def.settings_by_name[s.name] = copy
        end
    end
end

-- Retries, backoff and timeouts of delivery, with their defaults.
function M.check_delivery(def, problem)
    local d = def.delivery or {}
    if type(d) ~= "table" then
        problem("delivery", "delivery must be a table")
        d = {}
    end
    schema.unknown_keys(d, delivery_keys, problem, "delivery", true)
    d.retries = d.retries or 3
    if math.type(d.retries) ~= "integer" or d.retries < 0 or d.retries > 20 then
        problem("delivery.retries", "retries must be an integer from 0 to 20")
    end
    if d.log_report ~= nil and type(d.log_report) ~= "boolean" then
        problem("delivery.log_report", "log_report must be a boolean")
    end
    d.retry_on = d.retry_on or { 429, 502, 503, 504 }
    for _, code in ipairs(type(d.retry_on) == "table" and d.retry_on or {}) do
        if math.type(code) ~= "integer" or code < 400 or code > 599 then
            problem("delivery.retry_on", "retry_on must list HTTP statuses from 400 to 599")
        end
    end
    for k, default in pairs({ spool_reports = 100, spool_bytes = 10 * 1024 * 1024 }) do
        d[k] = d[k] or default
        if math.type(d[k]) ~= "integer" or d[k] < 1 then
            problem("delivery." .. k, k .. " must be a positive integer")
        end
    end
    for k, default in pairs({ backoff = 1000, timeout = 30000, connect_timeout = 10000 }) do
        if d[k] == nil then
            d[k] = default
        else
            local ms, err = duration.parse(d[k])
            if not ms or ms == 0 then problem("delivery." .. k, err or "must be positive") end
            d[k] = ms
        end
    end
    def.delivery = d
end

-- The definition as plain data (no functions), for the control state and docs.
function M.describe(def)
    local function fields(list)
        local out = {}
        for i, f in ipairs(list) do
            out[i] = M.describe_field(f, fields)
        end
        return out
    end
    return {
        name = def.name, description = def.description, version = def.version,
        endpoint = def.endpoint, method = def.method, format = def.format,
        canonical = def.canonical or false, schedule = def.schedule, optout = def.optout,
        disclosure = def.disclosure, settings = def.settings, identity = def.identity,
        delivery = def.delivery, last_report = def.last_report,
        fields = fields(def.fields),
    }
end

function M.describe_field(f, fields)
    if f == nil then return nil end
    return {
        name = f.name, type = f.type, description = f.description, unit = f.unit,
        null = f.null or false, setting = f.setting,
        fields = f.fields and fields(f.fields),
        items = f.items and M.describe_field(f.items, fields),
        values = f.values and M.describe_field(f.values, fields),
    }
end

return M
