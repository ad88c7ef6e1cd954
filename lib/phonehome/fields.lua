-- Field constructors for report scripts (require("phonehome.fields")), after Kong's
-- typedefs: one call per field, and each declaration knows the script line it came from.
local getinfo = debug.getinfo  -- kept here: the sandbox removes debug before any script runs
local stats = require("phonehome.stats")

local M = {}

-- Sources of the library's own modules start with this (the directory of this file).
local source = getinfo(1, "S").source
local library = source:match("^(@.*/)") or source

-- The first frame outside the library and C: the script's call that declared a field.
-- Library frames are passed over so that a script calling through them (a metamethod
-- run by phonehome.stats) learns no line but its own.
local function declarer()
    local level = 2
    repeat
        local info = getinfo(level, "Sl")
        if info and info.what ~= "C" and info.source:sub(1, #library) ~= library then
            return info
        end
        level = level + 1
    until not info
    return nil
end

-- Misuse of a constructor is an error at the script's line, as for a bad argument.
local function misuse(what, name, msg)
    local info = declarer()
    local at = info and (info.short_src .. ":" .. info.currentline .. ": ") or ""
    error(at .. what .. " '" .. tostring(name) .. "': " .. msg, 0)
end

-- The declaration decl with the keys of opts (unit, null, items, values, ...) added
-- and the line it was declared on.
local function declare(what, decl, opts)
    if opts ~= nil and type(opts) ~= "table" then
        misuse(what, decl.name, "options must be a table, got " .. type(opts))
    end
    local info = declarer()
    decl.line = info and info.currentline
    for k, v in pairs(opts or {}) do
        if decl[k] ~= nil then
            misuse(what, decl.name, "option '" .. tostring(k) .. "' is set by " .. what)
        end
        decl[k] = v
    end
    return decl
end

-- count(name, description [, opts]): an int counted by opts.value(ctx), or else taken
-- from a setting named after the field, 0 unless set. opts: value, unit.
function M.count(name, description, opts)
    local value = type(opts) == "table" and opts.value or nil
    if value ~= nil and type(value) ~= "function" then
        misuse("count", name, "value must be a function, got " .. type(value))
    end
    return declare("count", { name = name, type = "int", description = description,
                              setting = value == nil and { default = 0 } or nil }, opts)
end

-- setting(name, type, description [, default [, opts]]): the value of a setting named
-- after the field; with no default the field is null until the setting is given.
-- opts: unit, null, items (of an array), values (of a map).
function M.setting(name, kind, description, default, opts)
    local decl = declare("setting", { name = name, type = kind, description = description,
                                      setting = { default = default } }, opts)
    if default == nil and decl.null == nil then decl.null = true end
    return decl
end

-- value(name, type, description, value [, opts]): computed by value(ctx), or a constant.
-- opts: unit, null, items, values.
function M.value(name, kind, description, value, opts)
    return declare("value", { name = name, type = kind, description = description,
                              value = value }, opts)
end

-- object(name, description, fields [, opts]): an object built from its fields.
function M.object(name, description, fields, opts)
    return declare("object", { name = name, type = "object", description = description,
                               fields = fields }, opts)
end

-- instance_id(name, description [, opts]): the installation's random id, kept across
-- restarts.
function M.instance_id(name, description, opts)
    return declare("instance_id", { name = name, type = "string", description = description,
                                    value = function(ctx) return ctx.instance_id end }, opts)
end

-- The summary of a list of numbers. What stats.summary would fail on is raised here,
-- without a position, so that the message points at the field's declaration.
local function summarise(list)
    if type(list) ~= "table" then error("samples must be a list, got " .. type(list), 0) end
    for i, v in ipairs(list) do
        if type(v) ~= "number" then error("sample " .. i .. " is not a number: " .. type(v), 0) end
    end
    return stats.summary(list)
end

-- summary(name, description, samples [, opts]): min, max, mean, median and mode of the
-- list of numbers samples(ctx) returns (phonehome.stats.summary). opts: unit.
function M.summary(name, description, samples, opts)
    if type(samples) ~= "function" then
        misuse("summary", name, "samples must be a function, got " .. type(samples))
    end
    local decl = declare("summary", { name = name, type = "object", description = description,
        value = function(ctx) return summarise(samples(ctx)) end,
        fields = {
            { name = "min", type = "number", description = "Smallest sample." },
            { name = "max", type = "number", description = "Largest sample." },
            { name = "mean", type = "number", description = "Mean of the samples." },
            { name = "median", type = "number", description = "Median of the samples." },
            { name = "mode", type = "number", null = true,
              description = "Most frequent sample; null when there is none." },
        } }, opts)
    for _, f in ipairs(decl.fields) do f.line = decl.line end
    return decl
end

return M
