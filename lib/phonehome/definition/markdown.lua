-- A product's documentation as Markdown, rendered from the same declarations that
-- build and check its report, so the two cannot drift apart.
local delivery = require("phonehome.definition.delivery")
local duration = require("phonehome.duration")
local metrics = require("phonehome.definition.metrics")
local schema = require("phonehome.definition.schema")
local json = require("phonehome.json")

local M = {}

local function cell(s)
    return (tostring(s):gsub("|", "\\|"):gsub("\n", " "))
end

local function field_rows(list, prefix, out)
    for _, f in ipairs(list) do
        local name = prefix .. f.name
        local desc = f.description
        if f.unit then desc = desc .. " Unit: " .. f.unit .. "." end
        if f.setting then desc = desc .. " Setting `" .. f.setting .. "`." end
        if f.sources and #f.sources > 0 then
            desc = desc .. " Read from `" .. table.concat(f.sources, "`, `") .. "`."
        end
        if f.fallback ~= nil then
            desc = desc .. " `" .. json.encode(f.fallback) .. "` when that fails."
        end
        out[#out + 1] = string.format("| `%s` | %s | %s |", cell(name), cell(schema.type_name(f)),
            cell(desc))
        if f.fields then field_rows(f.fields, name .. ".", out) end
        local inner = f.items or f.values
        if inner and inner.fields then
            field_rows(inner.fields, name .. (f.items and "[]." or ".*."), out)
        end
    end
end

local function dur(v)
    if type(v) == "table" then return "the setting `" .. v.setting .. "` (ms)" end
    return duration.format(v)
end

local function value_list(vs)
    local out = {}
    for _, v in ipairs(vs or {}) do out[#out + 1] = "`" .. tostring(v) .. "`" end
    return table.concat(out, ", ")
end

local function channel(kind, c)
    local parts = {}
    if c.off and #c.off > 0 then parts[#parts + 1] = "off with " .. value_list(c.off) end
    if c.on and #c.on > 0 then parts[#parts + 1] = "on with " .. value_list(c.on) end
    local how = #parts > 0 and (": " .. table.concat(parts, "; ")) or ""
    return string.format("- %s `%s`%s", kind, c.name, how)
end

-- Each section appends its lines to out, starting with a blank line and its heading.
local function heading(out, title)
    out[#out + 1] = ""
    out[#out + 1] = "## " .. title
    out[#out + 1] = ""
end

local function schedule_section(d, out)
    local s = d.schedule
    heading(out, "Schedule")
    if s.at_start then out[#out + 1] = "- one report at start" end
    out[#out + 1] = "- first report: " .. dur(s.first) .. " after start"
    out[#out + 1] = "- then every " .. dur(s.interval) .. ", counted from "
        .. (s.anchor == "start" and "process start" or "the previous report")
    if s.jitter ~= 0 then out[#out + 1] = "- jitter: up to " .. dur(s.jitter) end
    if s.send_delay ~= 0 then
        out[#out + 1] = "- sent " .. dur(s.send_delay) .. " after it is built"
    end
end

local function endpoint_section(d, out)
    heading(out, "Endpoint")
    out[#out + 1] = string.format("`%s %s` (%s%s)", d.method,
        d.endpoint and delivery.redact(d.endpoint),
        d.format == "ga4" and "Google Analytics 4 Measurement Protocol" or "JSON",
        d.canonical and ", canonical: keys sorted" or "")
    local dl = d.delivery
    out[#out + 1] = ""
    out[#out + 1] = string.format("Timeout %s (connect %s). %s", dur(dl.timeout),
        dur(dl.connect_timeout),
        dl.retries == 0 and "No retry: an undelivered report waits in the spool for the next "
                .. "attempt."
            or string.format("Up to %d retries from %s, doubling, on connection failures and "
                .. "statuses %s.", dl.retries, dur(dl.backoff), table.concat(dl.retry_on, ", ")))
end

local function optout_section(d, out)
    heading(out, "Opting out")
    local o = d.optout
    out[#out + 1] = o.default == "on"
        and "Reports are sent unless one of these switches turns them off:"
        or "Nothing is sent until one of these switches turns reporting on (opt-in):"
    out[#out + 1] = ""
    for _, c in ipairs(o.env) do out[#out + 1] = channel("environment variable", c) end
    for _, c in ipairs(o.settings) do out[#out + 1] = channel("setting", c) end
    for _, c in ipairs(o.flags) do
        out[#out + 1] = string.format("- flag `%s` (after `--`)", c.name)
    end
    out[#out + 1] = "- `DO_NOT_TRACK=1` turns off every product"
    if o.build_when_off then
        out[#out + 1] = ""
        out[#out + 1] = "When turned off, the report is still built and logged, and marked as "
            .. "not sent."
    end
end

local function disclosure_section(d, out)
    heading(out, "Disclosure")
    for i, state in ipairs({ "on", "off" }) do
        if i > 1 then out[#out + 1] = "" end
        out[#out + 1] = "Printed at start when reporting is " .. state .. ":"
        out[#out + 1] = ""
        out[#out + 1] = "```"
        out[#out + 1] = d.disclosure[state]
        out[#out + 1] = "```"
    end
end

local function environment_section(d, out)
    if #d.environment == 0 then return end
    heading(out, "Environment")
    out[#out + 1] = "Variables the script reads (no other can be read):"
    out[#out + 1] = ""
    for _, name in ipairs(d.environment) do out[#out + 1] = "- `" .. name .. "`" end
end

local function settings_section(d, out)
    if #d.settings == 0 then return end
    heading(out, "Settings")
    out[#out + 1] = "| Setting | Type | Default | Description |"
    out[#out + 1] = "|---|---|---|---|"
    for _, st in ipairs(d.settings) do
        local default = st.default == nil and "(none)" or ("`" .. json.encode(st.default) .. "`")
        local desc = st.description
        if st.source then
            desc = desc .. " Read from `" .. st.key .. "` in source `" .. st.source
                .. "` unless given."
        end
        out[#out + 1] = string.format("| `%s` | %s | %s | %s |", cell(st.name), st.type,
            cell(default), cell(desc))
    end
end

-- One option of a source, as docs show it: SQL in a block, tables as JSON.
local function option_lines(key, v, out)
    if key == "queries" and type(v) == "table" then
        local names = {}
        for name in pairs(v) do names[#names + 1] = name end
        table.sort(names)
        for _, name in ipairs(names) do
            out[#out + 1] = "- query `" .. name .. "`:"
            out[#out + 1] = ""
            out[#out + 1] = "  ```sql"
            out[#out + 1] = "  " .. tostring(v[name]):gsub("\n", "\n  ")
            out[#out + 1] = "  ```"
        end
        return
    end
    local shown = type(v) == "table" and json.encode(v) or tostring(v)
    out[#out + 1] = "- " .. key .. ": `" .. cell(shown) .. "`"
end

local function sources_section(d, out)
    if #d.sources == 0 then return end
    heading(out, "Sources")
    out[#out + 1] = "What phonehome reads from the product, read-only (nothing else can be "
        .. "reached). \"(computed)\" is worked out before each report from the settings, "
        .. "the product's process or another source; credentials are never shown."
    for _, src in ipairs(d.sources) do
        out[#out + 1] = ""
        out[#out + 1] = "### `" .. src.name .. "` (" .. src.kind .. ")"
        out[#out + 1] = ""
        out[#out + 1] = src.description
        out[#out + 1] = ""
        local keys = {}
        for k in pairs(src.options) do keys[#keys + 1] = k end
        table.sort(keys)
        for _, k in ipairs(keys) do option_lines(k, src.options[k], out) end
        out[#out + 1] = "- timeout: " .. duration.format(src.timeout)
        if src.optional then out[#out + 1] = "- optional: a file that may not exist" end
        out[#out + 1] = "- used by: " .. (#src.used_by > 0
            and "`" .. table.concat(src.used_by, "`, `") .. "`" or "(nothing)")
    end
end

local function samplers_section(d, out)
    if #(d.samplers or {}) == 0 then return end
    heading(out, "Samplers")
    out[#out + 1] = "Readings the daemon takes between reports; a report carries those "
        .. "taken since the last one delivered (a report that fails keeps them)."
    out[#out + 1] = ""
    out[#out + 1] = "| Sampler | Reads | Every | Kept at most | Description |"
    out[#out + 1] = "|---|---|---|---|---|"
    for _, s in ipairs(d.samplers) do
        out[#out + 1] = string.format("| `%s` | %s | %s | %d | %s |", s.name,
            s.probe and "`" .. s.probe .. "`" or s.metric and "metric `" .. s.metric .. "`"
                or "source `" .. s.source .. "`",
            duration.format(s.every), s.max, cell(s.description))
    end
end

local function metrics_section(d, out)
    if #(d.metrics or {}) == 0 then return end
    heading(out, "Metrics (StatsD)")
    out[#out + 1] = "What the product may tell phonehome as it happens, as StatsD lines to "
        .. "the daemon (UDP 127.0.0.1:8125 unless `--statsd` says otherwise; "
        .. "`name:value|type`, sample rates `|@0.5` and DogStatsD tags `|#k:v` accepted). "
        .. "A report carries what arrived since the last one delivered; names not listed "
        .. "here are dropped and counted."
    out[#out + 1] = ""
    out[#out + 1] = "| Metric | Type | Lines | A report reads | Description |"
    out[#out + 1] = "|---|---|---|---|---|"
    for _, m in ipairs(d.metrics) do
        local t = metrics.TYPES[m.type]
        out[#out + 1] = string.format("| `%s` | %s | `%s` | %s | %s |", m.name, m.type,
            t.lines, t.reads, cell(m.description))
    end
end

local function process_section(d, out)
    local p = d.process
    if not (p.exe or p.command or #p.env > 0 or #p.flags > 0) then return end
    heading(out, "The product's process")
    out[#out + 1] = "Found by --pid, --pidfile, or else:"
    if p.exe then out[#out + 1] = "- executable `" .. p.exe .. "`" end
    if p.command then out[#out + 1] = "- command line matching `" .. p.command .. "`" end
    for _, n in ipairs(p.env) do out[#out + 1] = "- reads its variable `" .. n .. "`" end
    for _, n in ipairs(p.flags) do out[#out + 1] = "- reads its flag `" .. n .. "`" end
end

-- render(desc) -> Markdown text.
function M.render(d)
    local out = { "# " .. d.name, "", d.description, "", "## Fields", "",
                  "| Statistic Name | Type | Description |",
                  "|---|---|---|" }
    field_rows(d.fields, "", out)
    for _, section in ipairs({ schedule_section, endpoint_section, optout_section,
                               disclosure_section, environment_section, settings_section,
                               sources_section, metrics_section, samplers_section,
                               process_section }) do
        section(d, out)
    end
    return table.concat(out, "\n") .. "\n"
end

return M
