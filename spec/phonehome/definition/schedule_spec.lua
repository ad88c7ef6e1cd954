-- Schedules: first report, the ones after, restarts, time scale, jitter.
local schedule = require("phonehome.definition.schedule")

local function opts(t)
    t.settings = t.settings or {}
    t.scale = t.scale or 1
    t.random = t.random or function() return 0.5 end
    return t
end

describe("schedule", function()
    it("anchors Synapse's reports to process start: +300 s, +3 h, +6 h", function()
        local s = { first = 300000, interval = 10800000, anchor = "start", jitter = 0 }
        local o = opts({ start = 1000, now = 1000 })
        local due = schedule.first(s, o)
        assert.are.equal(1300, due)
        o.now = 1300
        due = schedule.after(s, o, due, 1301)
        assert.are.equal(1000 + 10800, due)
        o.now = due + 5
        assert.are.equal(1000 + 21600, schedule.after(s, o, due, due + 5))
    end)

    it("counts from the previous report, and never sends early after a restart", function()
        local s = { first = 3600000, interval = 86400000, anchor = "previous", jitter = 0 }
        assert.are.equal(5000 + 3600, schedule.first(s, opts({ start = 5000, now = 5000 })))
        -- sent an hour before the restart: the next is a day after that, not an hour after start
        local o = opts({ start = 5000, now = 5000, state = { last_sent = 1400 } })
        assert.are.equal(1400 + 86400, schedule.first(s, o))
        assert.are.equal(9000 + 86400, schedule.after(s, o, 8000, 9000))
    end)

    it("sends at start where the product does", function()
        local s = { first = 3600000, interval = 3600000, at_start = true, anchor = "previous",
                    jitter = 0 }
        assert.are.equal(42, schedule.first(s, opts({ start = 40, now = 42 })))
    end)

    it("reads durations from settings and divides them by the time scale", function()
        local s = { first = { setting = "initial_report" },
                    interval = { setting = "periodic_report" },
                    anchor = "previous", jitter = 0 }
        local o = opts({ start = 0, now = 0, scale = 100,
                         settings = { initial_report = 300000, periodic_report = 10800000 } })
        assert.are.equal(3, schedule.first(s, o))
        assert.are.equal(3 + 108, schedule.after(s, o, 3, 3))
    end)

    it("adds up to the declared jitter", function()
        local s = { first = 60000, interval = 60000, jitter = 10000, anchor = "previous" }
        assert.are.equal(60,
            schedule.first(s, opts({ start = 0, now = 0, random = function() return 0 end })))
        assert.are.equal(69.9,
            schedule.first(s, opts({ start = 0, now = 0, random = function() return 0.99 end })))
    end)

    local function problems_of(sched, settings)
        local def = { schedule = sched, settings_by_name = {} }
        for _, st in ipairs(settings or {}) do def.settings_by_name[st.name] = st end
        local out = {}
        schedule.check(def, function(path, msg) out[#out + 1] = path .. ": " .. msg end)
        return out
    end

    it("checks every duration's range, naming the value and the key", function()
        assert.are.same({}, problems_of({ first = "0s", interval = "3650d", jitter = 0,
                                          send_delay = "0ms" }))
        local bad = {
            { { first = "5m", interval = 0 }, "schedule.interval", "0" },
            { { first = "5m", interval = "99999999999999999s" }, "schedule.interval",
              "99999999999999999s" },
            { { first = -1, interval = "1h" }, "schedule.first", "-1" },
            { { first = "5m", interval = "1h", jitter = "3651d" }, "schedule.jitter", "3651d" },
            { { first = "5m", interval = "1h", send_delay = math.maxinteger },
              "schedule.send_delay", tostring(math.maxinteger) },
        }
        for _, case in ipairs(bad) do
            local out = problems_of(case[1])
            assert.are.equal(1, #out)
            assert.is_truthy(out[1]:find(case[2] .. ": ", 1, true))
            assert.is_truthy(out[1]:find("for " .. case[2], 1, true))
            assert.is_truthy(out[1]:find(case[3], 1, true))
        end
    end)

    it("checks the default of a setting a duration is taken from", function()
        local every = { name = "every", type = "int", default = 0 }
        local out = problems_of({ first = "5m", interval = { setting = "every" } }, { every })
        assert.are.equal(1, #out)
        assert.matches("setting 'every': duration 0 for schedule%.interval must be positive",
            out[1])
        every.default = 60000
        assert.are.same({}, problems_of({ first = "5m", interval = { setting = "every" } },
            { every }))
    end)

    it("finds a duration setting's value missing or out of range", function()
        local s = { first = { setting = "f" }, interval = { setting = "i" },
                    jitter = { setting = "j" } }
        assert.is_nil(schedule.settings_problem(s, { f = 0, i = "1h" }))
        local key, err = schedule.settings_problem(s, { f = 0, i = 0 })
        assert.are.equal("i", key)
        assert.matches("duration 0 for schedule%.interval must be positive", err)
        key, err = schedule.settings_problem(s, { f = -1, i = 1 })
        assert.are.equal("f", key)
        assert.matches("negative duration %-1 for schedule%.first", err)
        key, err = schedule.settings_problem(s, { f = 0, i = 1, j = "soon" })
        assert.are.equal("j", key)
        assert.matches('bad duration "soon" for schedule%.jitter', err)
        key, err = schedule.settings_problem(s, { f = 0 })
        assert.are.equal("i", key)
        assert.matches("schedule%.interval needs a value", err)
    end)
end)
