-- `phonehome status`: per product, whether it sends and which switch decided it, its
-- instance id, last sent, next due, spool depth and script version, read from the
-- data directory without changing it.
local context = require("phonehome.cmd._context")
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local json = require("phonehome.json")
local optout = require("phonehome.definition.optout")
local sandbox = require("phonehome.sandbox")
local settings = require("phonehome.definition.settings")
local timefmt = require("phonehome.timefmt")

local M = {
    usage = "status [PRODUCT...]",
    summary = "whether each product sends and why, instance id, last sent,\nnext due, "
        .. "spool depth",
    args = "any",
    options = { json = "flag" },
    help = [[
  --json             one JSON object per product
]],
}

local function when(t) return t and timefmt.iso8601(t, 3) or nil end

-- One product's status; error says why its script or settings are not usable now.
local function one(ctx, name)
    local out = { product = name }
    local p, problems = sandbox.open_in(ctx.scripts, name)
    if not p then out.error = table.concat(problems, "; ") end
    if p then
        out.version = p.def.version
        local typed, err = settings.resolve(p.def, ctx.from_set[name], ctx.from_config[name])
        local bad = datadir.problems(p.def)
        if #bad > 0 then typed, err = nil, p.path .. ": " .. table.concat(bad, "; ") end
        if not typed then
            out.error = err
        else
            local sending, why = optout.decide(p.def, core.getenv, typed, ctx.flags)
            if sending == nil then
                out.error = why
            else
                out.sending, out.decided_by = sending, why
            end
        end
        out.instance_id = datadir.existing_instance_id(ctx.data_dir, p.def)
        p:close()
    end
    local state, bad, file = datadir.read_state(ctx.data_dir, name)
    if bad then
        out.state_error = file .. " is not valid (" .. bad .. "); the daemon sets it aside"
    end
    out.last_sent = when(state.last_sent)
    out.next_due = when(state.next_due)
    out.last_result = state.last_result
    out.reloads = state.reloads or 0
    out.reload_error = state.reload_error
    local spooled, unreadable = datadir.spooled(ctx.data_dir, name)
    out.spool, out.spool_unreadable = #spooled, #unreadable
    -- the window of samples the next report carries
    if type(state.samples) == "table" and next(state.samples) then
        out.samples = {}
        for sampler, w in pairs(state.samples) do
            out.samples[sampler] = { held = type(w.v) == "table" and #w.v or 0,
                                     dropped = tonumber(w.dropped) or 0 }
        end
    end
    -- the metrics' window: lines received per metric since the last report delivered
    if type(state.metrics) == "table" then
        out.metrics = {}
        for _, seg in ipairs(state.metrics.segments) do
            for metric, agg in pairs(seg.aggs) do
                out.metrics[metric] = (out.metrics[metric] or 0) + agg.lines
            end
        end
    end
    return out
end

-- "app.requests 120, app.users 4": StatsD lines received for the next report.
local function metrics_line(metrics)
    local names, parts = {}, {}
    for k in pairs(metrics) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do parts[#parts + 1] = k .. " " .. metrics[k] end
    return "  metrics for the next report (lines): "
        .. (#parts > 0 and table.concat(parts, ", ") or "none yet") .. "\n"
end

-- The StatsD listener's counts since it began, as one line; nil when it never ran.
local function listener_line(c)
    if not c then return nil end
    local where = {}
    if c.udp then where[#where + 1] = "udp " .. c.udp end
    if c.unix then where[#where + 1] = "unix " .. c.unix end
    return string.format("StatsD (%s) since %s: %d lines taken from %d datagrams; dropped: %d "
        .. "undeclared, %d malformed (%d of the wrong type), %d datagrams cut, %d datagrams "
        .. "by the kernel\n", table.concat(where, ", "), when(c.since) or "?", c.lines or 0,
        c.datagrams or 0, c.undeclared or 0, c.malformed or 0, c.wrong_type or 0,
        c.truncated or 0, c.kernel_drops or 0)
end

-- "cpu 12, memory 12 (3 dropped)": the samples held for the next report.
local function samples_line(samples)
    local names, parts = {}, {}
    for k in pairs(samples) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
        local w = samples[k]
        parts[#parts + 1] = k .. " " .. w.held
            .. (w.dropped > 0 and (" (" .. w.dropped .. " dropped)") or "")
    end
    return "  samples for the next report: " .. table.concat(parts, ", ") .. "\n"
end

function M.run(ctx)
    local ok, err = context.gather_settings(ctx)
    if not ok then return context.fail(err) end
    local names = #ctx.args > 0 and ctx.args or sandbox.names(ctx.scripts)
    local rows, bad = {}, false
    for _, name in ipairs(names) do
        rows[#rows + 1] = one(ctx, name)
        bad = bad or rows[#rows].error ~= nil
    end
    local listener = datadir.read_listener(ctx.data_dir)
    if ctx.options.json then
        for _, r in ipairs(rows) do io.stdout:write(json.encode(r), "\n") end
        if listener then io.stdout:write(json.encode({ statsd = listener }), "\n") end
    else
        for _, r in ipairs(rows) do
            if r.error then
                io.stdout:write(r.product, ": error: ", r.error, "\n")
            end
            if r.sending ~= nil then
                io.stdout:write(string.format(
                    "%s: %s (%s)\n  instance %s, last sent %s, next due %s, spool %d%s%s\n"
                        .. "  reloads %d%s\n",
                    r.product, r.sending and "sending" or "not sending", r.decided_by,
                    r.instance_id or "(none yet)", r.last_sent or "never",
                    r.next_due or "not scheduled",
                    r.spool, r.last_result and (", last result: " .. r.last_result) or "",
                    r.version and (", script version " .. r.version) or "", r.reloads,
                    r.reload_error and (", last reload error: " .. r.reload_error) or ""))
            end
            if r.samples then io.stdout:write(samples_line(r.samples)) end
            if r.metrics then io.stdout:write(metrics_line(r.metrics)) end
            if r.spool_unreadable > 0 then
                io.stdout:write("  ", r.spool_unreadable, " spooled file(s) cannot be read; "
                    .. "the daemon sets them aside\n")
            end
            if r.state_error then io.stdout:write("  state file ", r.state_error, "\n") end
        end
        io.stdout:write(listener_line(listener) or "")
    end
    return bad and 1 or 0
end

return M
