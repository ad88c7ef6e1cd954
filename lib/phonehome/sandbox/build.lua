-- Building a report inside the sandbox: computes each declared field, checks the whole
-- value against the declarations, and encodes it. Nothing is returned unless every check
-- passed.
local core = require("phonehome.core")
local json = require("phonehome.json")
local schema = require("phonehome.definition.schema")

local M = {}

-- the field being computed ({ path, line, sources, source_failed }), for a killed build's
-- message and for what its function may read
M.current = nil

-- allowed(decl) -> the set of sources a declaration (a field, the identity) may read.
function M.allowed(decl)
    local set = {}
    if type(decl.sources) == "table" then
        for _, n in ipairs(decl.sources) do set[n] = true end
    elseif decl.source ~= nil then
        set[decl.source] = true
    end
    return set
end

-- The value of one field: its function, its constant, its setting or its sub-fields.
-- A function that fails gives the field its fallback if it declares one, else null if it
-- may be null, else fails the report; the failure is reported with the field's file:line.
-- In a dry build (no source read), a failure for want of a source is only a warning.
local function compute(f, ctx, path, report)
    local v = f.value
    if type(v) == "function" then
        local current = { path = path, line = f.line, sources = M.allowed(f) }
        M.current = current
        report.progress(path, f.line)
        local started = core.monotonic()
        local ok, res = pcall(v, ctx)
        local explained = { ms = (core.monotonic() - started) * 1000 }
        report.explain[path] = explained
        if ok then M.current = nil end  -- kept on failure: a killed build names it
        if not ok then
            -- never the script's __tostring: it is the script's code, run past its limits
            local msg = (type(res) == "string" or type(res) == "number") and tostring(res)
                or "(error object is a " .. type(res) .. " value)"
            explained.error = msg
            if report.dry and current.source_failed then
                -- a check that read no source: nothing to say about this field
                if f.fallback == nil and not f.null then report.unread[path] = true end
                return f.fallback
            elseif f.fallback ~= nil then
                report.warn(f, path, msg .. "; the fallback " .. tostring(f.fallback)
                    .. " is reported")
                return f.fallback
            elseif f.null then
                report.warn(f, path, msg)
            else
                report.fail(f, path, msg)
            end
            return nil
        end
        return res
    elseif v ~= nil then
        return v
    elseif f.setting then
        local s = ctx.settings[f.setting]
        if s == nil and not f.null then
            report.fail(f, path, "setting '" .. f.setting .. "' has no value; give one with --set "
                .. ctx.product .. "." .. f.setting .. "=VALUE")
        end
        return s
    elseif f.fields then
        local t = {}
        for _, sub in ipairs(f.fields) do
            t[sub.name] = compute(sub, ctx, path .. "." .. sub.name, report)
        end
        return t
    end
    return nil
end

-- build(def, ctx, where [, dry]) -> json text, warnings, explain | nil, errors.
-- explain: per field path computed by a function, { ms, error } (for show --explain).
-- where(path, fallback_line) gives "file:line" for a field path, for messages.
function M.build(def, ctx, where, dry)
    local errors, warnings = {}, {}
    local function entry(list, path, msg, line)
        -- a message that already starts with a position keeps it
        if msg:match("^[^%s:]+:%d+: ") then
            list[#list + 1] = msg:gsub("^([^%s:]+:%d+): ", "%1: field '" .. path .. "': ", 1)
        else
            list[#list + 1] = where(path, line) .. ": field '" .. path .. "': " .. msg
        end
    end
    local report = {
        dry = dry,
        explain = {},
        unread = {},  -- in a dry build, the fields left empty for want of a source
        fail = function(f, path, msg) entry(errors, path, msg, f.line) end,
        warn = function(f, path, msg) entry(warnings, path, msg, f.line) end,
        -- the field now computed, for the message if the process has to be killed
        progress = function(path, line) core.progress(path, where(path, line)) end,
    }
    local value = {}
    for _, f in ipairs(def.fields) do
        value[f.name] = compute(f, ctx, f.name, report)
    end
    if #errors > 0 then return nil, errors end
    local root = { type = "object", fields = def.fields }
    local checked = {}
    for _, f in ipairs(def.fields) do
        checked[f.name] = schema.check(f, value[f.name], f.name, function(path, msg)
            if not report.unread[path] then
                errors[#errors + 1] = where(path) .. ": field '" .. path .. "': " .. msg
            end
        end)
    end
    if #errors > 0 then return nil, errors end
    if next(report.unread) then return "", warnings, report.explain end  -- nothing to send
    return json.encode(checked, root, def.canonical), warnings, report.explain
end

return M
