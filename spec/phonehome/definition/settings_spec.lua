-- Settings for a run: --set and --config typed by the declarations, and the durations a
-- schedule takes from them in range.
local settings = require("phonehome.definition.settings")

local desc = {
    name = "m",
    schedule = { first = { setting = "initial" }, interval = { setting = "periodic" } },
    settings = {
        { name = "initial", type = "int", default = 300000 },
        { name = "periodic", type = "int", default = 10800000 },
        { name = "label", type = "string" },
    },
}

describe("settings.resolve", function()
    it("types --set values, and --set wins over --config", function()
        local out = assert(settings.resolve(desc, { periodic = "60000" },
            { periodic = 1000, label = "x" }))
        assert.are.equal(60000, out.periodic)
        assert.are.equal(300000, out.initial)
        assert.are.equal("x", out.label)
    end)

    it("refuses a duration setting out of range, naming how, the setting and the value",
        function()
        for _, v in ipairs({ "0", "-5", "999999999999999999", "315360000001" }) do
            local out, err = settings.resolve(desc, { periodic = v })
            assert.is_nil(out)
            assert.is_truthy(err:find("--set m.periodic: ", 1, true), err)
            assert.is_truthy(err:find(v, 1, true), err)
            assert.is_truthy(err:find("schedule.interval", 1, true), err)
        end
        local out, err = settings.resolve(desc, nil, { initial = -1 })
        assert.is_nil(out)
        assert.matches("^%-%-config m%.initial: negative duration %-1 for schedule%.first", err)
        assert.is_table(settings.resolve(desc, { initial = "0" }))
    end)
end)
