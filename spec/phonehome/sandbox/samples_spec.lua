-- ctx.samples: a sampler's window as fields read it.
local samples = require("phonehome.sandbox.samples")

local def = { samplers = { { name = "mem" }, { name = "cpu" } } }

describe("phonehome.sandbox.samples", function()
    it("gives the series and its summaries", function()
        local view = samples.view(def, { mem = { t = { 10, 20, 30, 40, 50 },
                                                 v = { 5, 1, 3, 3, 9 }, dropped = 2 } })
        local m = view.mem
        assert.are.same({ 5, 1, 3, 3, 9 }, m.values)
        assert.are.same({ 10, 20, 30, 40, 50 }, m.times)
        assert.are.same({ 5, 2, 1, 9, 4.2, 3, 3 },
                        { m.count, m.dropped, m.min, m.max, m.mean, m.median, m.mode })
        assert.are.same({ 1, 3, 5, 9, 9 }, { m.percentile(0), m.percentile(50),
                                            m.percentile(80), m.percentile(90),
                                            m.percentile(100) })
        -- the values are a copy: a field changing them changes nothing for the next
        m.values[1] = 100
        assert.are.equal(5, samples.view(def, { mem = { t = { 1 }, v = { 5 } } }).mem.values[1])
    end)

    it("is empty, with no summary, for a sampler that has taken nothing", function()
        local c = samples.view(def, {}).cpu
        assert.are.same({ 0, 0 }, { c.count, c.dropped })
        assert.are.same({}, c.values)
        assert.is_nil(c.min)
        assert.is_nil(c.percentile(50))
        assert.are.equal(0, samples.view(def, nil).mem.count)
    end)

    it("refuses a sampler not declared and a percentile out of range", function()
        local view = samples.view(def, {})
        assert.has_error(function() return view.disk end, 'unknown sampler "disk"')
        assert.has_error(function() view.mem.percentile(101) end,
                         "percentile: expected a number from 0 to 100, got 101")
    end)
end)
