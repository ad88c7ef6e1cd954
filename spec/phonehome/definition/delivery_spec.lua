-- Delivery's pure parts: targets, redaction, GA4 splitting, Retry-After.
local delivery = require("phonehome.definition.delivery")
local json = require("phonehome.json")

local def = { name = "p", endpoint = "https://stats.example.org/r", format = "json" }

describe("delivery", function()
    it("sends to --endpoint BASE/v1/report/PRODUCT, else the setting, "
        .. "else the script's URL", function()
        assert.are.equal("http://127.0.0.1:9/v1/report/p",
            delivery.target(def, {}, "http://127.0.0.1:9/"))
        assert.are.equal("https://mine.example/x",
            delivery.target(def, { endpoint = "https://mine.example/x" }))
        assert.are.equal("https://stats.example.org/r", delivery.target(def, {}))
    end)

    it("allows plain http to loopback only, unless a setting says otherwise", function()
        assert.is_string(delivery.target(def, { endpoint = "http://localhost:8/x" }))
        assert.is_string(delivery.target(def, { endpoint = "http://[::1]:8/x" }))
        local url, err = delivery.target(def, { endpoint = "http://10.1.2.3/x" })
        assert.is_nil(url)
        assert.matches("plain http to 10%.1%.2%.3 refused", err)
        assert.is_string(delivery.target(def,
            { endpoint = "http://10.1.2.3/x", allow_http = true }))
        assert.is_nil((delivery.target(def, { endpoint = "ftp://x/y" })))
    end)

    it("adds GA4's measurement id and secret, and hides the secret in logs", function()
        local ga = { name = "m", endpoint = "https://www.google-analytics.com/mp/collect",
                     format = "ga4" }
        assert.is_nil((delivery.target(ga, {})))
        local url = delivery.target(ga, { ["tracking_id.id"] = "G-1",
                                          ["tracking_id.secret"] = "s e/c" })
        assert.are.equal("https://www.google-analytics.com/mp/collect"
            .. "?measurement_id=G-1&api_secret=s%20e%2Fc", url)
        assert.are.equal("https://www.google-analytics.com/mp/collect"
            .. "?measurement_id=G-1&api_secret=REDACTED", delivery.redact(url))
        assert.are.equal("https://host/x?token=REDACTED&a=1",
            delivery.redact("https://user:pw@host/x?token=t&a=1"))
    end)

    it("splits GA4 reports into requests of 25 events", function()
        local events = {}
        for i = 1, 60 do events[i] = { name = "e", params = { i = i } } end
        local bodies = delivery.bodies({ format = "ga4" },
            json.encode({ client_id = "c", events = events }))
        assert.are.equal(3, #bodies)
        local counts = {}
        for i, b in ipairs(bodies) do
            local v = json.decode(b)
            counts[i] = #v.events
            assert.are.equal("c", v.client_id)
        end
        assert.are.same({ 25, 25, 10 }, counts)
        assert.are.same({ "{}" }, delivery.bodies({ format = "json" }, "{}"))
    end)

    it("reads Retry-After in seconds or as an HTTP date", function()
        assert.are.equal(2, delivery.retry_after("2", 0))
        assert.are.equal(3600, delivery.retry_after("99999", 0))
        local now = os.time({ year = 2026, month = 11, day = 22, hour = 0, min = 0, sec = 0,
                              isdst = false })
        local offset = os.time(os.date("*t", now)) - os.time(os.date("!*t", now))
        assert.are.equal(30, delivery.retry_after("Sun, 22 Nov 2026 00:00:30 GMT", now + offset))
        assert.is_nil(delivery.retry_after(nil, 0))
        assert.is_nil(delivery.retry_after("soon", 0))
    end)
end)
