-- Sources that fail in the ways a product's answers and processes do: malformed JSON and
-- metrics from a live HTTP server, a product process that goes away and comes back.
-- #integration
local json = require("phonehome.json")
local h = require("support.helper")

-- A name for this run's stand-in product processes: another copy of the suite running at
-- the same time has its own, so neither finds the other's process.
local NAME = "fakeproduct" .. math.random(1e6, 9e6)

local function field(name, ftype, body, src)
    return string.format('{ name = %q, type = %q, description = "d", null = true, %s '
        .. "value = function(ctx) %s end },", name, ftype,
        src and ("source = " .. string.format("%q", src) .. ",") or "", body)
end

local function show(dir)
    return h.run({ "show", "p", "--scripts", dir, "--data-dir", dir .. "/data" }, nil, 60)
end

describe("sources that fail #integration", function()
    after_each(h.cleanup)

    it("malformed JSON and malformed metrics fail only their fields, naming the line",
       function()
        local root = h.tmpdir()
        h.write(root .. "/bad.json", '{"a": 1,}')
        h.write(root .. "/good.json", '{"a": 1}')
        h.write(root .. "/metrics", "up 1\nup{job=\"x} 2\n")
        local api = h.endpoint("serve:" .. root)
        local dir = h.tmpdir()
        h.write(dir .. "/p.lua", h.script("p", field("bad", "int", "return ctx.sources.bad.a",
            "bad") .. field("good", "int", "return ctx.sources.good.a", "good")
            .. field("up", "number", "return ctx.sources.m:value('up')", "m"),
            string.format([[sources = {
    { name = "bad", kind = "http", description = "d", url = %q },
    { name = "good", kind = "http", description = "d", url = %q },
    { name = "m", kind = "prometheus", description = "d", url = %q },
},]], api.url .. "/bad.json", api.url .. "/good.json", api.url .. "/metrics")))
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ bad = json.null, good = 1, up = json.null }, json.decode(r.out))
        assert.matches("field 'bad': source 'bad': .-bad.json: ", r.err)
        assert.matches("field 'up': source 'm': .-/metrics: line 2", r.err)
        api.stop()
    end)

    it("finds the product's process again after it restarts, and fails only the fields "
       .. "that read it while it is gone", function()
        local function start()
            return tonumber(h.sh("MODE=m bash -c 'exec -a " .. NAME .. "2 sleep 600' "
                .. ">/dev/null 2>&1 & echo $!"))
        end
        local dir = h.tmpdir()
        h.write(dir .. "/p.lua", h.script("p", field("pid", "int", "return ctx.process.pid")
            .. field("mode", "string", "return ctx.process.env('MODE')")
            .. field("n", "int", "return 1"),
            'process = { command = "^' .. NAME .. '2", env = { "MODE" } },'))
        local first = start()
        local r = show(dir)
        assert.are.same({ pid = first, mode = "m", n = 1 }, json.decode(r.out))
        h.sh("kill " .. first .. "; while kill -0 " .. first .. " 2>/dev/null; do sleep 0.02; done")
        r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ pid = json.null, mode = json.null, n = 1 }, json.decode(r.out))
        assert.matches("field 'pid': no process matches command=%^" .. NAME .. "2", r.err)
        local second = start()
        finally(function() h.sh("kill " .. second) end)
        r = show(dir)
        assert.are.same({ pid = second, mode = "m", n = 1 }, json.decode(r.out))
    end)

    it("a value of the product's opt-out variable it would refuse sends nothing and says why",
       function()
        local pid = tonumber(h.sh("P_TELEMETRY=maybe bash -c 'exec -a " .. NAME .. "3 sleep 600' "
            .. ">/dev/null 2>&1 & echo $!"))
        finally(function() h.sh("kill " .. pid) end)
        local dir = h.tmpdir()
        h.write(dir .. "/p.lua", h.script("p", field("n", "int", "return 1"),
            'process = { command = "^' .. NAME .. '3" },')
            :gsub('optout = { default = "on" }', 'optout = { default = "on", env = { { name = '
                .. '"P_TELEMETRY", on = { "enabled" }, off = { "disabled" } } } }'))
        local ep = h.endpoint("201")
        local r = h.run({ "run", "--once", "--scripts", dir, "--data-dir", h.tmpdir(),
                          "--endpoint", ep.url }, nil, 60)
        assert.matches('msg="opt%-out switch not understood; not sending" error=.-P_TELEMETRY=',
                       r.err)
        assert.is_nil(r.err:find("traceback", 1, true))
        assert.are.equal(0, #ep.requests())
        ep.stop()
    end)

    it("an optional config file that does not exist is absent, without a word; one that is "
       .. "there is read", function()
        local d = h.tmpdir()
        local dir = h.tmpdir()
        h.write(dir .. "/p.lua", h.script("p", field("level", "int", "return ctx.settings.level")
            .. field("raw", "bool", "return ctx.sources.cfg == nil", "cfg"), string.format([[
sources = { { name = "cfg", kind = "yaml", optional = true, description = "d", path = %q } },
settings = { { name = "level", type = "int", default = 3, source = "cfg", key = "level",
               description = "d" } },
identity = { source = "cfg",
             value = function(ctx) return ctx.sources.cfg and ctx.sources.cfg.id end },]],
            d .. "/config.yaml")))
        local r = show(dir)
        assert.are.equal(0, r.code, r.err)
        assert.are.same({ level = 3, raw = true }, json.decode(r.out))
        assert.is_nil(r.err:find("field", 1, true))
        h.write(d .. "/config.yaml", "level: 5\nid: abc-123\n")
        r = show(dir)
        assert.are.same({ level = 5, raw = false }, json.decode(r.out))
        r = h.run({ "docs", "p", "--scripts", dir })
        assert.matches("optional: a file that may not exist", r.out)
        assert.matches("used by: `raw`, `identity`, `setting level %(level%)`", r.out)
    end)
end)
