-- Schedules: the declaration a definition gives (checked, durations in milliseconds) and
-- when reports are due (durations divided by the time scale; times are epoch seconds).
local duration = require("phonehome.duration")
local schema = require("phonehome.definition.schema")

local M = {}

local schedule_keys = { first = true, interval = true, jitter = true, anchor = true,
                        at_start = true, send_delay = true }

-- The durations, in the order they are checked.
local DURATIONS = { "first", "interval", "jitter", "send_delay" }

-- Durations that must be positive; first, jitter and send_delay may be 0.
local positive = { interval = true }

-- A schedule duration in seconds: ms, or { setting = name } read from settings, which
-- settings.resolve has checked (see settings_problem).
function M.seconds(v, settings, scale)
    if type(v) == "table" then v = settings[v.setting] end
    if v == nil then return 0 end
    return assert(duration.parse(v)) / 1000 / (scale or 1)
end

-- The names of the settings the schedule takes durations from.
function M.setting_names(s)
    local names = {}
    for _, k in ipairs(DURATIONS) do
        if type(s[k]) == "table" then names[#names + 1] = s[k].setting end
    end
    return names
end

-- settings_problem(s, values) -> nil, or setting name, message: a duration the schedule
-- takes from a setting whose value is missing or out of range.
function M.settings_problem(s, values)
    for _, k in ipairs(DURATIONS) do
        local v = s[k]
        if type(v) == "table" then
            local value = values[v.setting]
            if value == nil and (k == "first" or k == "interval") then
                return v.setting, "schedule." .. k .. " needs a value"
            end
            if value ~= nil then
                local ms, err = duration.parse(value, positive[k], "schedule." .. k)
                if not ms then return v.setting, err end
            end
        end
    end
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

-- A duration may be written out, given in ms, or taken from a setting: { setting = "x" },
-- whose default must be a duration in range too.
local function check_duration(def, k, v, problem)
    local where = "schedule." .. k
    if type(v) == "table" then
        local s = def.settings_by_name[v.setting or false]
        if not s or (s.type ~= "int" and s.type ~= "string") then
            problem(where, "a duration from a setting must name an int (ms) or string setting")
            return nil
        end
        if s.default ~= nil then
            local ms, err = duration.parse(s.default, positive[k], where)
            if not ms then problem(where, "setting '" .. v.setting .. "': " .. err) end
        end
        return { setting = v.setting }
    end
    local ms, err = duration.parse(v, positive[k], where)
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
            s[k] = check_duration(def, k, s[k], problem)
        elseif k == "first" or k == "interval" then
            problem("schedule." .. k, "schedule needs '" .. k .. "'")
        end
    end
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
