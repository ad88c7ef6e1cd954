-- The metrics section of a definition: each StatsD metric a product accepts, checked, and
-- samplers that read a gauge among them.
local definition = require("phonehome.definition")

local function problems(metrics, samplers)
    local def = {
        name = "p", description = "d", endpoint = "https://example.org/r",
        schedule = { first = "1h", interval = "1h" }, optout = { default = "on" },
        disclosure = { on = "on", off = "off" }, metrics = metrics, samplers = samplers,
        fields = { { name = "n", type = "int", description = "d", value = 1 } },
    }
    local out = {}
    definition.check(def, function(path, msg) out[#out + 1] = path .. ": " .. msg end)
    return out, def
end

describe("phonehome.definition.metrics", function()
    it("accepts each type, kept as the aggregate it needs", function()
        local out, def = problems({
            { name = "app.requests", type = "counter", description = "d" },
            { name = "app.clients", type = "gauge", description = "d" },
            { name = "app/latency-ms", type = "timer", description = "d" },
            { name = "rows_per_shape", type = "histogram", description = "d" },
            { name = "size", type = "distribution", description = "d" },
            { name = "users", type = "set", description = "d" },
        })
        assert.are.same({}, out)
        local kinds = {}
        for i, m in ipairs(def.metrics) do kinds[i] = m.kind end
        assert.are.same({ "counter", "gauge", "histogram", "histogram", "histogram", "set" },
                        kinds)
        out, def = problems(nil)
        assert.are.same({}, out)
        assert.are.same({}, def.metrics)
    end)

    it("names what is wrong in each metric", function()
        local out = problems({
            { name = "a:b", type = "counter", description = "d" },
            { name = "ok", type = "meter", description = "d" },
            { name = "ok", type = "counter", description = "d" },
            { name = "x", type = "counter", description = "" },
            { name = "y", type = "counter", description = "d", tags = true },
            { name = string.rep("n", 201), type = "counter", description = "d" },
            "z",
        })
        local text = table.concat(out, "\n")
        assert.matches("metrics.a:b: name must be letters", text, 1, true)
        assert.matches("metrics.ok: type must be one of counter, distribution, gauge, "
                       .. "histogram, set, timer", text, 1, true)
        assert.matches("metrics.ok: another metric is named 'ok'", text, 1, true)
        assert.matches("metrics.x: description must be a non-empty string", text, 1, true)
        assert.matches("metrics.y.tags: unknown key 'tags'", text, 1, true)
        assert.matches("metrics.7: a metric must be a table", text, 1, true)
        assert.are.equal(7, #out, text)
        assert.matches("metrics must be a list of tables",
                       table.concat(problems("x"), "\n"), 1, true)
    end)

    it("lets a sampler read a gauge it declares, and nothing else", function()
        local gauge = { name = "clients", type = "gauge", description = "d" }
        local counter = { name = "hits", type = "counter", description = "d" }
        local out = problems({ gauge, counter }, {
            { name = "a", metric = "clients", every = "2s", description = "d" } })
        assert.are.same({}, out)
        out = problems({ gauge, counter }, {
            { name = "a", metric = "hits", every = "2s", description = "d" },
            { name = "b", metric = "nope", every = "2s", description = "d" },
            { name = "c", metric = "clients", probe = "process.rss", every = "2s",
              description = "d" } })
        local text = table.concat(out, "\n")
        assert.matches("samplers.a: metric must name a gauge declared in metrics", text, 1, true)
        assert.matches("samplers.b: metric must name a gauge declared in metrics", text, 1, true)
        assert.matches("samplers.c: a sampler reads one of a probe, a metric or a source",
                       text, 1, true)
    end)
end)
