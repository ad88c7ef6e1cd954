-- Opt-out decisions: which switch decides, in which order.
local optout = require("phonehome.definition.optout")

local function env(t) return function(k) return t[k] end end

local esdb = { optout = { default = "on",
                          env = { { name = "EVENTSTORE_TELEMETRY_OPTOUT", off = { "true" } } },
                          settings = {}, flags = {} } }
local synapse = { optout = { default = "off", env = {}, flags = {},
                             settings = { { name = "report_stats",
                                            on = { true }, off = { false } } } } }
local electric = { optout = { default = "on", settings = {}, flags = {}, env = {
    { name = "ELECTRIC_TELEMETRY",
      off = { "disabled", "0", "false" }, on = { "enabled", "1", "true" } } } } }
local coroot = { optout = { default = "on", env = {}, settings = {},
                            flags = { { name = "--disable-usage-statistics" } } } }

describe("optout.decide", function()
    it("sends by default where the product is opt-out", function()
        assert.are.same({ true, "default (on unless turned off)" },
            { optout.decide(esdb, env({}), {}, {}) })
    end)

    it("obeys the product's environment variable", function()
        assert.are.same({ false, "EVENTSTORE_TELEMETRY_OPTOUT=true" },
            { optout.decide(esdb, env({ EVENTSTORE_TELEMETRY_OPTOUT = "true" }), {}, {}) })
        assert.is_true((optout.decide(esdb, env({ EVENTSTORE_TELEMETRY_OPTOUT = "no" }), {}, {})))
    end)

    it("stops every product on DO_NOT_TRACK with any true value", function()
        for _, v in ipairs({ "1", "true", "yes", "TRUE" }) do
            local sending, why = optout.decide(synapse, env({ DO_NOT_TRACK = v }),
                                               { report_stats = true }, {})
            assert.is_false(sending)
            assert.are.equal("DO_NOT_TRACK=" .. v, why)
        end
        assert.is_true((optout.decide(esdb, env({ DO_NOT_TRACK = "0" }), {}, {})))
    end)

    it("sends nothing for an opt-in product until it is turned on", function()
        assert.are.same({ false, "default (opt-in: not turned on)" },
            { optout.decide(synapse, env({}), {}, {}) })
        assert.are.same({ false, "setting report_stats=false" },
            { optout.decide(synapse, env({}), { report_stats = false }, {}) })
        assert.are.same({ true, "setting report_stats=true" },
            { optout.decide(synapse, env({}), { report_stats = true }, {}) })
    end)

    it("takes a product flag given after --", function()
        assert.are.same({ false, "flag --disable-usage-statistics" },
            { optout.decide(coroot, env({}), {}, { ["--disable-usage-statistics"] = true }) })
    end)

    it("refuses a value that is neither on nor off where the product lists both", function()
        assert.is_false((optout.decide(electric, env({ ELECTRIC_TELEMETRY = "Disabled" }), {}, {})))
        assert.is_true((optout.decide(electric, env({ ELECTRIC_TELEMETRY = "enabled" }), {}, {})))
        local sending, err = optout.decide(electric, env({ ELECTRIC_TELEMETRY = "maybe" }), {}, {})
        assert.is_nil(sending)
        assert.matches('ELECTRIC_TELEMETRY="maybe" is neither on', err)
    end)
end)
