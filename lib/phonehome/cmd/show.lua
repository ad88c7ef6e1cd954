-- `phonehome show PRODUCT`: builds one report now from real probes and sources and prints
-- it as JSON, or with --explain, where each figure came from; nothing is sent.
local context = require("phonehome.cmd._context")
local defsources = require("phonehome.definition.sources")
local json = require("phonehome.json")

local M = {
    usage = "show PRODUCT",
    summary = "build one report now from real probes and print it as JSON;\nnothing is sent",
    args = "one",
    options = { pid = "value", pidfile = "value", explain = "flag" },
    help = context.pid_help .. [[
  --explain          print, per source, what it read, how long it took and whether it
                     failed, and per field its value, the sources it read and its time
]],
}

-- The first bytes of what a source read, on one line.
local function excerpt(v)
    local text = type(v) == "table" and json.encode(json.without_nulls(v) or v) or tostring(v)
    text = text:gsub("%c", " ")
    if #text > 120 then text = text:sub(1, 117) .. "..." end
    return text
end

local function explain(def, body, fetched, times)
    local out = { "Sources:" }
    for _, s in ipairs(def.sources) do
        local r = fetched[s.name]
        local line = string.format("  %-14s %-10s ", s.name, s.kind)
        if not r then
            line = line .. "not read"
        else
            line = line .. string.format("%-40s %8.1f ms  ", r.target or "", r.ms or 0)
            local shown
            if not r.ok then
                shown = "FAILED: " .. tostring(r.error)
            elseif defsources.config_kinds[s.kind] or (s.kind == "file" and r.format ~= "text") then
                -- a config file may hold credentials; binary data says nothing on a terminal
                shown = #r.value .. " bytes"
            else
                shown = excerpt(r.value)
            end
            line = line .. shown
        end
        out[#out + 1] = line
    end
    if #def.sources == 0 then out[#out + 1] = "  (none)" end
    out[#out + 1] = "Fields:"
    local report = json.decode(body) or {}
    local function walk(list, prefix, value)
        for _, f in ipairs(list) do
            local path = prefix .. f.name
            local v = type(value) == "table" and value[f.name] or nil
            if f.fields and not f.sources then
                walk(f.fields, path .. ".", v)
            else
                local t = times[path]
                local from = f.sources and ("from " .. table.concat(f.sources, ", "))
                    or (f.setting and ("setting " .. f.setting)) or ""
                out[#out + 1] = string.format("  %-32s %-30s %-20s %s%s", path, excerpt(v), from,
                    t and string.format("%.2f ms", t.ms) or "",
                    t and t.error and ("  failed: " .. t.error) or "")
            end
        end
    end
    walk(def.fields, "", report)
    return table.concat(out, "\n") .. "\n"
end

function M.run(ctx)
    local pid, err = context.prepare(ctx)
    if not pid then return context.fail(err) end
    local p, problems = context.open(ctx, ctx.args[1])
    if not p then return context.fail(table.concat(problems, "\n")) end
    local body, info
    body, problems, info = context.build_once(ctx, p, pid)
    p:close()
    if not body then
        for _, e in ipairs(problems) do io.stderr:write("phonehome: ", p.name, ": ", e, "\n") end
        return 1
    end
    if ctx.options.explain then
        io.stdout:write(explain(p.def, body, info.fetched or {}, info.times or {}))
    else
        io.stdout:write(body, "\n")
    end
    return 0
end

return M
