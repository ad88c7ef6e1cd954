local duration = require("phonehome.duration")

describe("duration", function()
    it("parses the forms products use into milliseconds", function()
        assert.are.equal(300000, duration.parse("300s"))
        assert.are.equal(300000, duration.parse("5m"))
        assert.are.equal(10800000, duration.parse("3h"))
        assert.are.equal(86400000, duration.parse("24h"))
        assert.are.equal(86400000, duration.parse("1d"))
        assert.are.equal(250, duration.parse("250ms"))
        assert.are.equal(1500, duration.parse("1.5s"))
        assert.are.equal(10800000, duration.parse(10800000))
    end)

    it("rejects what it cannot read, saying why", function()
        for _, bad in ipairs({ "5x", "", "h", "-5s", "5 minutes", true }) do
            local ms, err = duration.parse(bad)
            assert.is_nil(ms)
            assert.is_string(err)
        end
        assert.is_nil(duration.parse(-1))
        assert.is_nil(duration.parse(1.5))
    end)

    it("bounds a duration to 10 years, and to more than 0 where it must be positive", function()
        assert.are.equal(315360000000, duration.MAX)
        assert.are.equal(duration.MAX, duration.parse("3650d"))
        assert.are.equal(duration.MAX, duration.parse(duration.MAX))
        assert.are.equal(0, duration.parse("0s"))
        assert.are.equal(1, duration.parse(1, true))
        for _, bad in ipairs({ "3651d", duration.MAX + 1, math.maxinteger,
                               "99999999999999999s",   -- wraps around as an integer product
                               "1" .. string.rep("0", 400) .. "ms" }) do
            local ms, err = duration.parse(bad, false, "schedule.first")
            assert.is_nil(ms)
            assert.matches("longer than 10 years", err)
            assert.matches("for schedule%.first", err)
            assert.is_truthy(err:find(tostring(bad), 1, true))
        end
        for _, zero in ipairs({ 0, "0s", "0ms", "0.0001s" }) do
            local ms, err = duration.parse(zero, true, "schedule.interval")
            assert.is_nil(ms)
            assert.matches("for schedule%.interval must be positive", err)
        end
        local _, err = duration.parse(-5, false, "delivery.backoff")
        assert.are.equal("negative duration -5 for delivery.backoff", err)
    end)

    it("formats milliseconds back in the largest exact unit", function()
        assert.are.equal("3h", duration.format(10800000))
        assert.are.equal("5m", duration.format(300000))
        assert.are.equal("301s", duration.format(301000))
        assert.are.equal("250ms", duration.format(250))
        assert.are.equal("24h", duration.format(86400000))
    end)
end)
