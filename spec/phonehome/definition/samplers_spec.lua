-- The samplers section of a definition: each declaration checked and normalised.
local definition = require("phonehome.definition")

local function problems(samplers)
    local def = {
        name = "p", description = "d", endpoint = "https://example.org/r",
        schedule = { first = "1h", interval = "1h" }, optout = { default = "on" },
        disclosure = { on = "on", off = "off" }, samplers = samplers,
        fields = { { name = "n", type = "int", description = "d", value = 1 } },
    }
    local out = {}
    definition.check(def, function(path, msg) out[#out + 1] = path .. ": " .. msg end)
    return out, def
end

describe("phonehome.definition.samplers", function()
    it("accepts a sampler, its period in milliseconds and max defaulted", function()
        local out, def = problems({ { name = "rss", probe = "process.rss", every = "1m",
                                      description = "d" } })
        assert.are.same({}, out)
        assert.are.same({ name = "rss", probe = "process.rss", every = 60000, max = 1440,
                          description = "d" }, def.samplers[1])
        out, def = problems(nil)
        assert.are.same({}, out)
        assert.are.same({}, def.samplers)
    end)

    it("names what is wrong in each sampler", function()
        local out = problems({
            { name = "a", probe = "process.rss", every = "100ms", description = "d" },
            { name = "a", probe = "process.rss", every = "1m", description = "d" },
            { name = "b", probe = "disk", every = "1m", description = "d" },
            { name = "c", probe = "process.cpu", every = "1m", description = "d", max = 0 },
            { name = "d d", probe = "process.cpu", every = "1m", description = "" },
            { name = "e", probe = "process.cpu", every = "1m", description = "d", of = 1 },
            "x",
        })
        local text = table.concat(out, "\n")
        assert.matches("samplers.a: every must be at least 1s", text, 1, true)
        assert.matches("samplers.a: another sampler is named 'a'", text, 1, true)
        assert.matches("samplers.b: probe must be one of process.cpu, process.rss, "
            .. "system.memory_available", text, 1, true)
        assert.matches("samplers.c: max must be an integer from 1 to 100000", text, 1, true)
        assert.matches("samplers.d d: name must be an identifier", text, 1, true)
        assert.matches("samplers.d d: description must be a non-empty string", text, 1, true)
        assert.matches("samplers.e", text, 1, true)
        assert.matches("samplers.7: a sampler must be a table", text, 1, true)
        assert.are.same({ "samplers: samplers must be a list of tables" }, problems(7))
    end)

    it("takes a source and a value function, and names what is missing", function()
        local def = {
            name = "p", description = "d", endpoint = "https://example.org/r",
            schedule = { first = "1h", interval = "1h" }, optout = { default = "on" },
            disclosure = { on = "on", off = "off" },
            sources = { { name = "f", kind = "file", path = "/x", description = "d" } },
            samplers = {
                { name = "a", source = "f", value = function() return 1 end, every = "1m",
                  description = "d" },
                { name = "b", source = "nope", value = function() return 1 end, every = "1m",
                  description = "d" },
                { name = "c", source = "f", value = 3, every = "1m", description = "d" },
                { name = "d", probe = "process.rss", value = function() end, every = "1m",
                  description = "d" },
            },
            fields = { { name = "n", type = "int", description = "d", value = 1 } },
        }
        local out = {}
        definition.check(def, function(path, msg) out[#out + 1] = path .. ": " .. msg end)
        assert.are.same({ "samplers.b: source must name one of the product's sources",
                          "samplers.c: value must be a function(ctx) giving a number",
                          "samplers.d: value goes with source" }, out)
        -- described as plain data
        assert.are.same({ name = "a", source = "f", every = 60000, max = 1440,
                          description = "d" }, definition.describe(def).samplers[1])
    end)
end)
