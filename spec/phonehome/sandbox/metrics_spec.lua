-- ctx.metrics: the window of a product's StatsD metrics as fields read it, and
-- ctx.increase: a counter's growth since the last report delivered.
local metrics = require("phonehome.sandbox.metrics")
local stats = require("phonehome.stats")

local def = { metrics = {
    { name = "req", kind = "counter" }, { name = "clients", kind = "gauge" },
    { name = "lat", kind = "histogram" }, { name = "users", kind = "set" },
} }

describe("phonehome.sandbox.metrics", function()
    it("gives each kind's figures", function()
        local view = metrics.view(def, {
            req = { kind = "counter", lines = 3, value = 7.5 },
            clients = { kind = "gauge", lines = 0, value = 4 },
            lat = { kind = "histogram", lines = 6, count = 6, sum = 60, min = 1, max = 30,
                    bucketed = false, values = { 30, 1, 5 }, counts = { 1, 2, 3 } },
            users = { kind = "set", lines = 9, distinct = 4, hll = "s" },
        })
        assert.are.same({ value = 7.5, lines = 3 }, view.req)
        assert.are.same({ value = 4, lines = 0 }, view.clients)
        assert.are.same({ count = 4, lines = 9 }, view.users)
        local l = view.lat
        -- values 1 1 5 5 5 30: the median between the 3rd and 4th, the mode the most seen
        assert.are.same({ 6, 60, 1, 30, 10, 5, 5, false },
                        { l.count, l.sum, l.min, l.max, l.mean, l.median, l.mode,
                          l.approximate })
        assert.are.same({ 1, 1, 5, 30 },
                        { l.percentile(0), l.percentile(33), l.percentile(50),
                          l.percentile(100) })
        assert.has_error(function() l.percentile(101) end,
                         "percentile: expected a number from 0 to 100, got 101")
    end)

    it("is empty for what no line has reached yet, and refuses an undeclared name", function()
        local view = metrics.view(def, nil)
        assert.are.same({ value = 0, lines = 0 }, view.req)
        assert.are.same({ lines = 0 }, view.clients)
        assert.are.same({ count = 0, lines = 0 }, view.users)
        assert.are.equal(0, view.lat.count)
        assert.is_nil(view.lat.median)
        assert.is_nil(view.lat.percentile(50))
        assert.has_error(function() return view.nope end, 'undeclared metric "nope"')
    end)
end)

describe("phonehome.stats.summary with counts", function()
    it("weighs each distinct value by how often it was seen", function()
        assert.are.same({ min = 1, max = 9, mean = 3, median = 2, mode = 2 },
                        stats.summary({ 9, 2, 1 }, { 1, 4, 1 }))
        -- as the same values listed one by one
        assert.are.same(stats.summary({ 9, 2, 2, 2, 2, 1 }), stats.summary({ 9, 2, 1 },
                                                                           { 1, 4, 1 }))
        -- no value seen twice in a larger set: no mode
        assert.is_nil(stats.summary({ 1, 2 }, { 1, 1 }).mode)
    end)
end)
