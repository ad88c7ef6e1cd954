-- A product's report definition, as its script returns it: checked section by section
-- (one module each beside this one, holding the section's check and its meaning) and
-- normalised (durations in ms, settings by name), every problem collected with the path
-- it is at. Pure Lua: it runs inside a product's sandbox as well as in the control state.
local delivery = require("phonehome.definition.delivery")
local disclosure = require("phonehome.definition.disclosure")
local environment = require("phonehome.definition.environment")
local identity = require("phonehome.definition.identity")
local optout = require("phonehome.definition.optout")
local process = require("phonehome.definition.process")
local metrics = require("phonehome.definition.metrics")
local samplers = require("phonehome.definition.samplers")
local schedule = require("phonehome.definition.schedule")
local schema = require("phonehome.definition.schema")
local settings = require("phonehome.definition.settings")
local sources = require("phonehome.definition.sources")

local M = {}

local top_keys = {
    name = true, description = true, version = true, endpoint = true, method = true,
    format = true, canonical = true, schedule = true, optout = true, disclosure = true,
    settings = true, fields = true, identity = true, delivery = true, last_report = true,
    environment = true, sources = true, process = true, samplers = true,
    metrics = true,
}

-- The keys of the top level, as one section.
local function check_top(def, problem)
    schema.unknown_keys(def, top_keys, problem, "", true)
    for _, k in ipairs({ "name", "description", "endpoint" }) do
        if type(def[k]) ~= "string" or def[k] == "" then
            problem(k, "'" .. k .. "' must be a non-empty string")
        end
    end
    if type(def.name) == "string" and not def.name:match("^[%l%d_%-]+$") then
        problem("name", "name must be lower-case letters, digits, - and _")
    end
    -- the scheme in any case, as libcurl reads it (the full check is the sender's)
    if type(def.endpoint) == "string" and not def.endpoint:lower():match("^https?://[^/%s]+") then
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
    if def.last_report ~= nil and identity.file_problem("last_report", def.last_report) then
        problem("last_report", identity.file_problem("last_report", def.last_report))
    end
end

local function check_fields(def, problem)
    if type(def.fields) ~= "table" or next(def.fields) == nil then
        problem("fields", "a definition needs a non-empty list of fields")
        def.fields = {}
        return
    end
    schema.declare_list(def.fields, "", function(path, msg) problem("fields." .. path, msg) end)
end

-- check(def, problem) -> def normalised, or nil when it is not a table. problem(path,
-- message) gets a path such as "schedule.first" or "fields.instance.uuid" for each
-- problem. Settings come first: the other sections name them.
function M.check(def, problem)
    if type(def) ~= "table" then
        problem("", "the script must return a definition table, got " .. type(def))
        return nil
    end
    check_top(def, problem)
    settings.check(def, problem)
    sources.check(def, problem)
    process.check(def, problem)
    check_fields(def, problem)
    sources.check_uses(def, problem)
    settings.check_fields(def, problem)
    schedule.check(def, problem)
    metrics.check(def, problem)
    samplers.check(def, problem)
    optout.check(def, problem)
    delivery.check(def, problem)
    disclosure.check(def, problem)
    identity.check(def, problem)
    environment.check(def, problem)
    return def
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
        disclosure = def.disclosure, settings = def.settings,
        identity = def.identity and { file = def.identity.file, field = def.identity.field,
                                      from_product = def.identity.value ~= nil,
                                      sources = sources.used_by(def.identity) },
        delivery = def.delivery, last_report = def.last_report, environment = def.environment,
        fields = fields(def.fields), sources = sources.describe(def), process = def.process,
        samplers = samplers.describe(def.samplers), metrics = def.metrics,
    }
end

-- validate(def, value) -> the problems of a received report (decoded from JSON text,
-- null as json.null, arrays marked json.array) against a definition or its plain
-- description, one "field 'PATH': problem" each; {} when it conforms. The check a report
-- passes before it leaves, applied strictly in the control state: no sandbox is needed.
function M.validate(def, value)
    local problems = {}
    schema.check({ type = "object", fields = def.fields }, value, "", function(path, msg)
        problems[#problems + 1] = "field '" .. path:gsub("^%.", "") .. "': " .. msg
    end, true)
    return problems
end

function M.describe_field(f, fields)
    if f == nil then return nil end
    return {
        name = f.name, type = f.type, description = f.description, unit = f.unit,
        null = f.null or false, setting = f.setting,
        sources = #sources.used_by(f) > 0 and sources.used_by(f) or nil,
        fallback = f.fallback,
        fields = f.fields and fields(f.fields),
        items = f.items and M.describe_field(f.items, fields),
        values = f.values and M.describe_field(f.values, fields),
    }
end

return M
