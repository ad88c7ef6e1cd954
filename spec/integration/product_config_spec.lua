-- The daemon runs a product as the product's own config says: when its first report is
-- due and how often it reports, and whether it starts quietly, come from settings read
-- from the product's config file, from the start and again at every report. #integration
local h = require("support.helper")

-- A scripts directory with product "p", its schedule and start-up notice taken from a
-- YAML config (first, every: milliseconds; quiet: no notice), and that config's path.
local function product(config_text)
    local dir = h.tmpdir()
    local config = h.write(dir .. "/p.yaml", config_text)
    h.write(dir .. "/p.lua", [[
return {
    name = "p",
    description = "a product whose config times its reports",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = { setting = "first" }, interval = { setting = "every" } },
    optout = { default = "on" },
    disclosure = { on = "P REPORTS USAGE", off = "P IS OFF", quiet_when = { quiet = true } },
    sources = { { name = "config", kind = "yaml", description = "the product's config",
                  path = function(ctx) return ctx.settings.config end } },
    settings = {
        { name = "config", type = "string", description = "path of p.yaml" },
        { name = "first", type = "int", default = 300000, source = "config", key = "first",
          description = "delay of the first report, ms" },
        { name = "every", type = "int", default = 60000, source = "config", key = "every",
          description = "time between reports, ms" },
        { name = "quiet", type = "bool", source = "config", key = "quiet",
          description = "no notice at start" },
    },
    fields = {
        { name = "n", type = "int", description = "d", value = function() return 1 end },
    },
}
]])
    return dir, config
end

-- The daemon on product p, its config at config: the spawned process, and the time
-- (epoch seconds, this machine's clock) just before it started.
local function daemon(dir, config, url, more)
    local args = { "run", "p", "--scripts", dir, "--data-dir", dir .. "/data",
                   "--set", "p.config=" .. config, "--endpoint", url or "http://127.0.0.1:9" }
    for _, a in ipairs(more or {}) do args[#args + 1] = a end
    local before = os.time()
    return h.spawn(args), before
end

-- When the product's next report is due, as the daemon keeps it (epoch seconds).
local function next_due(dir) return h.state(dir .. "/data", "p").next_due end

local function stop(p)
    h.sh("kill -TERM " .. p.pid)
    assert.are.equal(0, h.exit_code(p))
end

-- The daemon until it has scheduled its first report: what it logged, and the delay of
-- that report bounded by clock readings around the start (low, high).
local function first_report(dir, config)
    local p, before = daemon(dir, config)
    h.wait_for(p.err, "msg=\"next report\"")
    local after = os.time()
    local due = next_due(dir)
    stop(p)
    return h.slurp(p.err), due - after, due - before
end

describe("a product's own config runs its schedule #integration", function()
    after_each(h.cleanup)

    it("times the first report and starts quietly as the product's config says", function()
        local err, low, high = first_report(product("first: 7200000\nevery: 60000\n"
            .. "quiet: true\n"))
        -- two hours from the start, not the five minutes of the default
        assert.is_true(high >= 7200 and low <= 7200 + 1, low .. " " .. high)
        assert.is_nil(err:find("P REPORTS USAGE", 1, true), err)
        assert.matches('msg=started .*sending=true', err)
    end)

    it("prints the notice when the config does not silence it", function()
        local err = first_report(product("first: 7200000\nevery: 60000\n"))
        assert.matches("P REPORTS USAGE", err, 1, true)
    end)

    it("follows the interval the config gives when a report reads it", function()
        local ep = h.endpoint("200")
        finally(ep.stop)
        -- at a time scale of 60 the first report is due 10 s after the start, every
        -- minute a second, every three hours three minutes
        local dir, config = product("first: 600000\nevery: 60000\n")
        local p, before = daemon(dir, config, ep.url, { "--time-scale", "60" })
        h.wait_for(p.err, "msg=\"next report\"")
        -- read at the start already; the report reads it again
        h.write(config, "first: 600000\nevery: 10800000\n")
        h.wait_until(function() return #ep.requests() >= 1 end, "the first report")
        h.wait_until(function() return h.state(dir .. "/data", "p").last_sent ~= nil end,
                     "the report's delivery")
        local after = os.time()
        local due = next_due(dir)
        stop(p)
        -- three hours (scaled) after the report started, not the minute read at the start
        assert.is_true(due >= before + 180 and due <= after + 181, tostring(due))
    end)

    it("keeps the schedule phonehome was given when the config's is out of range", function()
        local err, low, high = first_report(product("first: 7200000\nevery: 0\n"))
        assert.matches("level=warn product=p msg=\"the product's config gives a schedule", err,
                       1, true)
        assert.matches('setting=every', err, 1, true)
        -- the config's interval is refused, and with it its delay of the first report:
        -- the defaults (five minutes) are kept
        assert.is_true(high >= 300 and low <= 300 + 1, low .. " " .. high)
    end)
end)
