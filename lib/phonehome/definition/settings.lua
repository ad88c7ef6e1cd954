-- The settings section of a definition: the settings a script declares (in its settings
-- list, in place on a field, and the ones every product has), and their values for a run
-- from --set PRODUCT.KEY=VALUE and --config FILE, typed by the declarations. --set wins
-- over the file.
local json = require("phonehome.json")
local schedule = require("phonehome.definition.schedule")
local schema = require("phonehome.definition.schema")

local M = {}

-- source, key: a setting an operator need not give, read from the product's config file
local setting_keys = { name = true, type = true, default = true, description = true,
                       source = true, key = true }
M.types = { string = true, int = true, number = true, bool = true, array = true, map = true }

-- Whether a plain value is of a setting type.
function M.value_ok(stype, v)
    if stype == "int" then return math.type(v) == "integer" end
    if stype == "number" then return type(v) == "number" end
    if stype == "bool" then return type(v) == "boolean" end
    if stype == "string" then return type(v) == "string" end
    return type(v) == "table"
end

-- check(def, problem): the declared settings list, indexed by name in def.settings_by_name.
function M.check(def, problem)
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
            if not M.types[s.type] then
                problem(where, "setting type must be string, int, number, bool, array or map")
            elseif s.default ~= nil and not M.value_ok(s.type, s.default) then
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
local function field_settings(def, list, prefix, problem)
    for _, f in ipairs(list) do
        if type(f) == "table" and type(f.name) == "string" then
            local path = prefix == "" and f.name or (prefix .. "." .. f.name)
            if type(f.setting) == "table" then
                for k in pairs(f.setting) do
                    if k ~= "default" then
                        problem("fields." .. path, "an in-place setting takes only 'default'")
                    end
                end
                local s = { name = path, type = setting_type_of(f.type),
                            default = f.setting.default, description = f.description }
                if def.settings_by_name[path] then
                    problem("fields." .. path, "setting '" .. path .. "' already declared")
                elseif s.default ~= nil and M.types[s.type]
                    and not M.value_ok(s.type, s.default) then
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
                field_settings(def, f.fields, path, problem)
            end
        end
    end
end

-- Settings every product has, for the operator: where reports go, and whether plain
-- http may leave the machine.
local implicit = {
    { name = "endpoint", type = "string",
      description = "Where reports go instead of the script's endpoint (an http(s) URL)." },
    { name = "allow_http", type = "bool", default = false,
      description = "Allow plain http to hosts other than loopback." },
    { name = "ca_file", type = "string",
      description = "A PEM bundle of the CAs to verify the endpoint with, instead of the "
          .. "system's." },
}

-- check_fields(def, problem): the settings fields take their values from, declared in
-- place or named, then the settings every product has. After check().
function M.check_fields(def, problem)
    field_settings(def, def.fields, "", problem)
    for _, s in ipairs(implicit) do
        if not def.settings_by_name[s.name] then
            local copy = {}
            for k, v in pairs(s) do copy[k] = v end
            def.settings[#def.settings + 1] = copy
            def.settings_by_name[s.name] = copy
        end
    end
end

local bools = { ["true"] = true, yes = true, on = true, ["1"] = true,
                ["false"] = false, no = false, off = false, ["0"] = false }

-- Turns the text of a --set value into the declared type, or nil, reason.
function M.convert(stype, text)
    if stype == "string" then return text end
    if stype == "int" then
        local n = text:match("^%s*[-+]?%d+%s*$") and math.tointeger(tonumber(text))
        if n then return n end
        return nil, "expected int, got " .. string.format("%q", text)
    end
    if stype == "number" then
        local n = tonumber(text)
        if n and n == n and n ~= math.huge and n ~= -math.huge then return n end
        return nil, "expected number, got " .. string.format("%q", text)
    end
    if stype == "bool" then
        local b = bools[text:lower()]
        if b ~= nil then return b end
        return nil, "expected bool (true or false), got " .. string.format("%q", text)
    end
    local v, err = json.decode(text)
    if type(v) ~= "table" then
        return nil, "expected " .. stype .. " as JSON, got " .. string.format("%q", text)
            .. (err and (" (" .. err .. ")") or "")
    end
    return v
end

-- parse_set(list) -> { product = { key = text } }, or nil, message.
function M.parse_set(list)
    local out = {}
    for _, item in ipairs(list) do
        local product, key, value = item:match("^([%w_%-]+)%.([^=]+)=(.*)$")
        if not product then
            return nil, "--set " .. item .. ": expected PRODUCT.KEY=VALUE"
        end
        out[product] = out[product] or {}
        out[product][key] = value
    end
    return out
end

-- resolve(desc, from_set, from_config) -> typed settings with defaults, or nil, message.
-- A duration the schedule takes from a setting must be in range, whichever gave it.
function M.resolve(desc, from_set, from_config)
    local out, how = {}, {}
    for _, s in ipairs(desc.settings) do out[s.name] = s.default end
    local by_name = {}
    for _, s in ipairs(desc.settings) do by_name[s.name] = s end
    local function unknown(key, via)
        return nil, string.format("%s: %s has no setting '%s' (see: phonehome docs %s)",
            via, desc.name, key, desc.name)
    end
    for key, v in pairs(from_config or {}) do
        local s = by_name[key]
        if not s then return unknown(key, "--config") end
        if not M.value_ok(s.type, v) then
            return nil, string.format("--config: setting %s.%s: expected %s, got %s",
                desc.name, key, s.type, schema.describe(v))
        end
        out[key], how[key] = v, "--config"
    end
    for key, text in pairs(from_set or {}) do
        local s = by_name[key]
        if not s then return unknown(key, "--set " .. desc.name .. "." .. key) end
        local v, err = M.convert(s.type, text)
        if v == nil then
            return nil, string.format("--set %s.%s: %s", desc.name, key, err)
        end
        out[key], how[key] = v, "--set"
    end
    local key, err = schedule.settings_problem(desc.schedule, out)
    if key then
        return nil, string.format("%s %s.%s: %s", how[key] or "setting", desc.name, key, err)
    end
    return out
end

return M
