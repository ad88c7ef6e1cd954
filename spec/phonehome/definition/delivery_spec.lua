-- Delivery's pure parts: targets (read by libcurl's parser, given as core.url_parse),
-- redaction, GA4 splitting, the wait before a retry.
local core = require("phonehome.core")
local delivery = require("phonehome.definition.delivery")
local json = require("phonehome.json")

local def = { name = "p", endpoint = "https://stats.example.org/r", format = "json" }

local function target(d, settings, base)
    return delivery.target(d, settings, base, core.url_parse)
end

describe("delivery", function()
    it("sends to --endpoint BASE/v1/report/PRODUCT, else the setting, "
        .. "else the script's URL", function()
        assert.are.equal("http://127.0.0.1:9/v1/report/p",
            target(def, {}, "http://127.0.0.1:9/"))
        assert.are.equal("https://mine.example/x",
            target(def, { endpoint = "https://mine.example/x" }))
        assert.are.equal("https://stats.example.org/r", target(def, {}))
    end)

    it("allows plain http to loopback only, unless a setting says otherwise", function()
        assert.is_string(target(def, { endpoint = "http://localhost:8/x" }))
        assert.is_string(target(def, { endpoint = "http://[::1]:8/x" }))
        local url, err = target(def, { endpoint = "http://10.1.2.3/x" })
        assert.is_nil(url)
        assert.matches("plain http to 10%.1%.2%.3 refused", err)
        assert.is_string(target(def,
            { endpoint = "http://10.1.2.3/x", allow_http = true }))
        assert.is_nil((target(def, { endpoint = "ftp://x/y" })))
    end)

    it("judges the host libcurl connects to, whatever precedes an @ or a colon", function()
        for _, u in ipairs({ "http://localhost:1@example.com/", "http://[::1]@example.com/",
                             "http://127.0.0.1:80@example.com/", "hTTp://localhost@example.com/",
                             "http://localhost\\@example.com/" }) do
            local url, err = target(def, { endpoint = u })
            assert.is_nil(url, u)
            assert.are.equal("plain http to example.com refused; use https, or set "
                .. "p.allow_http=true", err)
        end
        for _, u in ipairs({ "http://example.com:1@127.0.0.1/", "HTTP://LOCALHOST:8/",
                             "http://0x7f.1/", "http://2130706433/", "http://127.1/",
                             "http://[0:0:0:0:0:0:0:1]/", "http://127.255.0.9:1/" }) do
            assert.is_string(target(def, { endpoint = u }), u)
        end
        for _, u in ipairs({ "http://localhost.example.com/", "http://128.0.0.1/",
                             "http://[::2]/", "http://localhost./", "http://127.0.0.1.nip.io/" }) do
            assert.matches("^plain http to .* refused", select(2, target(def, { endpoint = u })))
        end
        -- the URL sent is the one judged, as libcurl reads it
        local url, parts = target(def, { endpoint = "HTTPS://alice:pw@Stats.Example.org/r?a=1" })
        assert.are.equal("https://alice:pw@Stats.Example.org/r?a=1", url)
        assert.are.same({ url = url, scheme = "https", user = "alice", password = "pw",
                          host = "Stats.Example.org", path = "/r", query = "a=1" }, parts)
    end)

    it("names no secret of a URL it refuses", function()
        for _, u in ipairs({ "ftp://alice:pw@x/y?k=v", "http://alice:pw@a b/?k=v",
                             "alice:pw@x/?k=v", "http://alice:pw@a@b/?k=v",
                             "http://alice:pw@192.0.2.1/?k=v" }) do
            local url, err = target(def, { endpoint = u })
            assert.is_nil(url)
            assert.is_nil(err:find("alice", 1, true), err)
            assert.is_nil(err:find("pw", 1, true), err)
            assert.is_nil(err:find("=v", 1, true), err)
        end
    end)

    it("adds GA4's measurement id and secret, and hides the secret in logs", function()
        local ga = { name = "m", endpoint = "https://www.google-analytics.com/mp/collect",
                     format = "ga4" }
        assert.is_nil((delivery.target(ga, {})))
        local url, parts = target(ga, { ["tracking_id.id"] = "G-1",
                                        ["tracking_id.secret"] = "s e/c" })
        assert.are.equal("https://www.google-analytics.com/mp/collect"
            .. "?measurement_id=G-1&api_secret=s%20e%2Fc", url)
        -- every query value is hidden, not only those named like secrets
        assert.are.equal("https://www.google-analytics.com/mp/collect"
            .. "?measurement_id=REDACTED&api_secret=REDACTED", delivery.redact(url))
        assert.are.equal(delivery.redact(url), delivery.redact(url, parts))
        assert.are.equal("https://REDACTED@host/x?token=REDACTED&a=REDACTED",
            delivery.redact("https://user:pw@host/x?token=t&a=1"))
    end)

    it("hides a URL's user, password, query values and fragment, parsed or not", function()
        for u, want in pairs({
            ["http://u:p@[::1]:8/x?a=1&b&c=#f"] = "http://REDACTED@[::1]:8/x?a=REDACTED&REDACTED"
                .. "&c=REDACTED#REDACTED",
            ["http://u@h"] = "http://REDACTED@h/",
            ["https://h:443/p/q"] = "https://h:443/p/q",
            ["http://localhost:1@example.com/"] = "http://REDACTED@example.com/",
        }) do
            assert.are.equal(want, delivery.redact(u, core.url_parse(u)))
        end
        -- by hand, for what libcurl cannot read: everything up to the last @
        assert.are.equal("http://REDACTED@a b/x?k=REDACTED#REDACTED",
            delivery.redact("http://alice:pw@x@a b/x?k=v#frag"))
        assert.are.equal("REDACTED@h/?k=REDACTED", delivery.redact("alice:pw@h/?k=v"))
        assert.are.equal("http://h/p", delivery.redact("http://h/p"))
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

    it("waits as Retry-After says, else backs off, and never more than an hour", function()
        local d = { backoff = 1000 }
        local function none() return 0 end
        assert.are.equal(2, delivery.wait(d, 1, 2, none))
        assert.are.equal(1, delivery.wait(d, 1, nil, none))
        assert.are.equal(4, delivery.wait(d, 3, nil, none))
        assert.are.equal(5, delivery.wait(d, 3, nil, function() return 1 end))
        assert.are.equal(3600, delivery.wait(d, 1, 251606971810, none))
        assert.are.equal(3600, delivery.wait(d, 1, math.maxinteger, none))
        assert.are.equal(3600, delivery.wait(d, 1000, nil, none))
        assert.are.equal(3600, delivery.wait({ backoff = 1e300 }, 20, nil, none))
        assert.are.equal(1, delivery.wait(d, 1, 0, none))
    end)
end)
