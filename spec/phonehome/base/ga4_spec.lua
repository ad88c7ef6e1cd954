-- The GA4 Measurement Protocol limits, as GA4 applies them.
local ga4 = require("phonehome.base.ga4")

local function body(events) return { client_id = "c", events = events } end

describe("ga4.check", function()
    it("accepts a request within every limit", function()
        local params = {}
        for i = 1, 25 do params["p" .. i] = ("v"):rep(100) end
        local events = {}
        for i = 1, 25 do events[i] = { name = "event_" .. i, params = params } end
        assert.are.same({}, ga4.check(body(events), "{}"))
    end)

    it("names each limit broken", function()
        local params = {}
        for i = 1, 26 do params["p" .. i] = 1 end
        local reasons = ga4.check(body({
            { name = "1st" }, { name = "_private" }, { name = "firebase_x" },
            { name = ("n"):rep(41) },
            { name = "ok", params = params }, { name = "ok", params = { long = ("v"):rep(101) } },
            { name = "ok", params = { ["bad name"] = 1 } }, "not an event",
        }), ("x"):rep(130000))
        local text = table.concat(reasons, "\n")
        for _, want in ipairs({
            "body is 130000 bytes", 'events%[1%]: event name "1st" must start with a letter',
            'events%[2%]: event name "_private" uses the reserved prefix "_"',
            'events%[3%]: event name "firebase_x" uses the reserved prefix "firebase_"',
            "events%[4%]: event name .- is longer than 40 characters",
            "events%[5%]: 26 params, GA4 takes at most 25",
            'events%[6%]: param "long" is longer than 100 characters',
            'events%[7%]: param name "bad name" must start with a letter',
            "events%[8%]: event must be an object",
        }) do
            assert.matches(want, text)
        end
    end)

    it("requires a client id and at most 25 events", function()
        local events = {}
        for i = 1, 26 do events[i] = { name = "e" } end
        local reasons = ga4.check({ events = events })
        assert.are.same({ "client_id must be a non-empty string",
                          "26 events, GA4 takes at most 25 a request" }, reasons)
        assert.are.same({ "events must be a non-empty array" },
            ga4.check({ client_id = "c", events = {} }))
    end)
end)
