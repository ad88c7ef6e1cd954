-- Opt-out: the switches a definition declares, and whether a product may send and which
-- switch decided it: DO_NOT_TRACK first, then its flags, environment variables and
-- settings, then its default.
local schema = require("phonehome.definition.schema")

local M = {}

local optout_keys = { default = true, env = true, settings = true, flags = true,
                      build_when_off = true }

local function is_list_of(t, kind)
    if type(t) ~= "table" then return false end
    for _, v in pairs(t) do
        if type(v) ~= kind then return false end
    end
    return true
end

local falsy = { ["0"] = true, ["false"] = true, no = true, off = true, [""] = true }

-- DO_NOT_TRACK counts when set to any true value (1, true, yes, ...).
function M.do_not_track(getenv)
    local v = getenv("DO_NOT_TRACK")
    return v ~= nil and not falsy[v:lower()]
end

local function member(list, v, fold)
    for _, x in ipairs(list or {}) do
        if x == v or (fold and type(x) == "string" and type(v) == "string"
                          and x:lower() == v:lower()) then
            return true
        end
    end
    return false
end

-- decide(def, getenv, settings, flags) -> sending (bool), reason (text), or nil, error
-- when an environment variable holds a value the product does not accept.
-- flags: the set of product flags given after `--`.
function M.decide(def, getenv, settings, flags)
    local o = def.optout
    if M.do_not_track(getenv) then return false, "DO_NOT_TRACK=" .. getenv("DO_NOT_TRACK") end
    for _, c in ipairs(o.flags) do
        if flags[c.name] then return false, "flag " .. c.name end
    end
    for _, c in ipairs(o.env) do
        local v = getenv(c.name)
        if v ~= nil then
            if member(c.off, v, true) then return false, c.name .. "=" .. v end
            if member(c.on, v, true) then return true, c.name .. "=" .. v end
            if c.on and #c.on > 0 then
                -- a product that lists both kinds of value refuses any other
                return nil, string.format("%s=%q is neither on (%s) nor off (%s)", c.name, v,
                    table.concat(c.on, ", "), table.concat(c.off or {}, ", "))
            end
        end
    end
    for _, c in ipairs(o.settings) do
        local v = settings[c.name]
        if v ~= nil then
            if member(c.off, v) then return false, "setting " .. c.name .. "=" .. tostring(v) end
            if member(c.on, v) then return true, "setting " .. c.name .. "=" .. tostring(v) end
        end
    end
    if o.default == "on" then return true, "default (on unless turned off)" end
    return false, "default (opt-in: not turned on)"
end

local function check_channel_values(c, where, problem)
    for _, k in ipairs({ "on", "off" }) do
        if c[k] ~= nil and type(c[k]) ~= "table" then
            problem(where, "'" .. k .. "' must be a list of values")
        end
    end
end

-- check(def, problem): the opt-out declaration of a definition, with its defaults.
function M.check(def, problem)
    local o = def.optout
    if type(o) ~= "table" then
        problem("optout", "optout must be a table (default, env, settings, flags)")
        return
    end
    schema.unknown_keys(o, optout_keys, problem, "optout", true)
    if o.default ~= "on" and o.default ~= "off" then
        problem("optout.default", "default must be \"on\" (sends unless opted out) or \"off\" "
            .. "(opt-in)")
    end
    o.env, o.settings, o.flags = o.env or {}, o.settings or {}, o.flags or {}
    for _, c in ipairs(o.env) do
        if type(c) ~= "table" or type(c.name) ~= "string" then
            problem("optout.env", "an env channel needs a name")
        else
            check_channel_values(c, "optout.env." .. c.name, problem)
            if not is_list_of(c.on or {}, "string") or not is_list_of(c.off or {}, "string") then
                problem("optout.env." .. c.name, "environment values must be strings")
            end
        end
    end
    for _, c in ipairs(o.settings) do
        if type(c) ~= "table" or not def.settings_by_name[c.name or false] then
            problem("optout.settings", "a settings channel must name a declared setting")
        else
            check_channel_values(c, "optout.settings." .. c.name, problem)
        end
    end
    for _, c in ipairs(o.flags) do
        if type(c) ~= "table" or type(c.name) ~= "string" or not c.name:match("^%-%-?[%w%-]+$") then
            problem("optout.flags", "a flag channel needs a name such as \"--disable-telemetry\"")
        end
    end
    if o.build_when_off ~= nil and type(o.build_when_off) ~= "boolean" then
        problem("optout.build_when_off", "build_when_off must be a boolean")
    end
end

return M
