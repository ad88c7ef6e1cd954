-- Schedules: the declaration a definition gives (checked, durations in milliseconds) and
-- when reports are due (durations divided by the time scale; times are epoch seconds).
local duration = require("phonehome.duration")
local schema = require("phonehome.definition.schema")

local M = {}

local schedule_keys = { first = true, interval = true, jitter = true, anchor = true,
                        at_start = true, send_delay = true }

-- A schedule duration in seconds: ms, or { setting = name } read from settings.
function M.seconds(v, settings, scale)
    if type(v) == "table" then v = settings[v.setting] end
    if type(v) == "string" then v = duration.parse(v) end
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

-- A duration may be written out, given in ms, or taken from a setting: { setting = "x" }.
local function check_duration(def, v, where, problem)
    if type(v) == "table" then
        local s = def.settings_by_name[v.setting or false]
        if not s or (s.type ~= "int" and s.type ~= "string") then
            problem(where, "a duration from a setting must name an int (ms) or string setting")
            return nil
        end
        local ms, err = duration.parse(s.default)
        if s.default ~= nil and not ms then problem(where, err) end
        return { setting = v.setting }
    end
    local ms, err = duration.parse(v)
    if not ms then problem(where, err) end
    return ms
end

-- check(def, problem): the schedule of a definition, durations made milliseconds.
function M.check(def, problem)
    local s = def.schedule
    if type(s) ~= "table" then
        problem("schedule", "schedule must be a table with first and interval")
        return
    end
    schema.unknown_keys(s, schedule_keys, problem, "schedule", true)
    for _, k in ipairs({ "first", "interval", "jitter", "send_delay" }) do
        if s[k] ~= nil then
            s[k] = check_duration(def, s[k], "schedule." .. k, problem)
        elseif k == "first" or k == "interval" then
            problem("schedule." .. k, "schedule needs '" .. k .. "'")
        end
    end
    if s.interval == 0 then problem("schedule.interval", "interval must be positive") end
    s.jitter, s.send_delay = s.jitter or 0, s.send_delay or 0
    s.anchor = s.anchor or "previous"
    if s.anchor ~= "start" and s.anchor ~= "previous" then
        problem("schedule.anchor", "anchor must be \"start\" or \"previous\"")
    end
    if s.at_start ~= nil and type(s.at_start) ~= "boolean" then
        problem("schedule.at_start", "at_start must be a boolean")
    end
end

return M
