-- When reports are due. Durations are milliseconds (from the definition or its
-- settings), divided by the time scale; times are epoch seconds.
local M = {}

-- A schedule duration in seconds: ms, or { setting = name } read from settings.
function M.seconds(v, settings, scale)
    if type(v) == "table" then v = settings[v.setting] end
    if type(v) == "string" then v = require("phonehome.duration").parse(v) end
    return (v or 0) / 1000 / (scale or 1)
end

local function jitter(s, settings, scale, random)
    local j = M.seconds(s.jitter, settings, scale)
    return j > 0 and random() * j or 0
end

-- first(s, opts) -> when the first report is due. opts: start (process start), now,
-- state ({ last_sent }), settings, scale, random.
-- A report at start where the product sends one; then its first delay after start, but
-- never sooner than an interval after the report sent before a restart, where reports
-- are counted from the previous one.
function M.first(s, opts)
    if s.at_start then return opts.now end
    local due = opts.start + M.seconds(s.first, opts.settings, opts.scale)
    local last = opts.state and opts.state.last_sent
    if s.anchor == "previous" and last then
        due = math.max(due, last + M.seconds(s.interval, opts.settings, opts.scale))
    end
    return due + jitter(s, opts.settings, opts.scale, opts.random)
end

-- after(s, opts, due, sent_at) -> the next due time after the report due at `due`:
-- anchored to process start, the next of start + k intervals (Synapse: +300 s, then
-- +3 h, +6 h, ...); else an interval after the previous report was sent.
function M.after(s, opts, due, sent_at)
    local interval = M.seconds(s.interval, opts.settings, opts.scale)
    local nxt
    if s.anchor == "start" then
        local k = math.floor((math.max(opts.now, due) - opts.start) / interval) + 1
        nxt = opts.start + k * interval
    else
        nxt = (sent_at or due) + interval
    end
    return nxt + jitter(s, opts.settings, opts.scale, opts.random)
end

return M
