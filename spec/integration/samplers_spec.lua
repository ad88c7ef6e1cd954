-- Samplers against the running daemon at a high time scale: readings of a process the
-- spec started, the window a report carries (kept after a failed send, new after a
-- delivered one), its bound, and its survival across kill -9 and a restart. #integration
local json = require("phonehome.json")
local h = require("support.helper")

-- A scripts directory with product "s": a sampler of the target's resident memory every
-- minute (at most max), reports every ten minutes (the first after first), a failed one
-- dropped.
local function product(max, first)
    local dir = h.tmpdir()
    h.write(dir .. "/s.lua", string.format([[
return {
    name = "s",
    description = "a product whose memory is sampled",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = %q, interval = "10m" },
    optout = { default = "on" },
    disclosure = { on = "on", off = "off" },
    delivery = { retries = 0, drop_failed = true },
    samplers = { { name = "mem", probe = "process.rss", every = "1m", max = %d,
                   description = "resident memory" } },
    fields = {
        { name = "mem", type = "array", items = "int", null = true, description = "d",
          value = function(ctx)
              local s = ctx.samples.mem
              return s.count > 0 and s.values or nil
          end },
        { name = "first", type = "number", null = true, description = "d",
          value = function(ctx) return ctx.samples.mem.times[1] end },
        { name = "last", type = "number", null = true, description = "d",
          value = function(ctx) local t = ctx.samples.mem.times return t[#t] end },
        { name = "median", type = "number", null = true, description = "d",
          value = function(ctx) return ctx.samples.mem.median end },
        { name = "p90", type = "number", null = true, description = "d",
          value = function(ctx) return ctx.samples.mem.percentile(90) end },
        { name = "dropped", type = "int", description = "d",
          value = function(ctx) return ctx.samples.mem.dropped end },
    },
}
]], first or "10m", max or 1000))
    return dir
end

local function rss(pid)
    return tonumber(h.sh("awk '/^VmRSS/ { print $2 }' /proc/" .. pid .. "/status")) * 1024
end

-- The daemon on product s sampling process pid, at a time scale of 600 (a minute is
-- 0.1 s, ten minutes 1 s), its data in data.
local function daemon(dir, data, pid, url)
    return h.spawn({ "run", "--scripts", dir, "--data-dir", data, "--pid", tostring(pid),
                     "--endpoint", url, "--time-scale", "600" })
end

describe("samplers #integration", function()
    local to_stop = {}
    after_each(function()
        for i = #to_stop, 1, -1 do to_stop[i]() end
        to_stop = {}
        h.cleanup()
    end)
    local function later(fn) to_stop[#to_stop + 1] = fn end

    local function target()
        local pid = tonumber(h.sh(h.pauser(h.tmpdir() .. "/target")
            .. " >/dev/null 2>&1 & echo $!"))
        later(function() h.sh("kill " .. pid .. " 2>/dev/null") end)
        return pid
    end

    it("carries the window since the last delivered report; a failed one keeps it", function()
        local pid = target()
        local ep = h.endpoint("500,200")
        later(ep.stop)
        local data = h.tmpdir()
        local p = daemon(product(), data, pid, ep.url)
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        h.wait_until(function() return #ep.requests() >= 3 end, "three reports")
        h.sh("kill -TERM " .. p.pid)
        assert.are.equal(0, h.exit_code(p))
        local r = {}
        for i = 1, 3 do r[i] = json.decode(ep.requests()[i].body) end
        local size = rss(pid)
        for i = 1, 3 do
            assert.is_true(#r[i].mem >= 1, "report " .. i .. " has no sample")
            for _, v in ipairs(r[i].mem) do assert.are.equal(size, v) end
            assert.are.same({ size, size, 0 }, { r[i].median, r[i].p90, r[i].dropped })
        end
        -- the first report failed: the second starts where it started, and holds more
        assert.are.equal(r[1].first, r[2].first)
        assert.is_true(#r[2].mem > #r[1].mem)
        -- the second was delivered: the third holds only what came after it
        assert.is_true(r[3].first > r[2].last, r[3].first .. " <= " .. r[2].last)
        -- status says what the next report holds
        local st = h.run({ "status", "s", "--scripts", product(), "--data-dir", data })
        assert.matches("samples for the next report: mem %d+", st.out)
    end)

    it("keeps at most max samples, counting those it left out", function()
        local pid = target()
        local ep = h.endpoint("200")
        later(ep.stop)
        local p = daemon(product(3), h.tmpdir(), pid, ep.url)
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        h.wait_until(function() return #ep.requests() >= 1 end, "a report")
        local r = json.decode(ep.requests()[1].body)
        assert.are.equal(3, #r.mem)
        assert.is_true(r.dropped >= 1, tostring(r.dropped))
    end)

    it("keeps its samples across kill -9 and a restart", function()
        local pid = target()
        local ep = h.endpoint("200")
        later(ep.stop)
        -- the first report an hour (6 s) after the start: none before the kill
        local data, dir = h.tmpdir(), product(nil, "60m")
        local p = daemon(dir, data, pid, ep.url)
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        local saved
        h.wait_until(function()
            saved = ((h.state(data, "s").samples or {}).mem or {}).t or {}
            return #saved >= 3
        end, "three samples kept")
        h.sh("kill -9 " .. p.pid)
        -- killed before its first report: the samples taken are sent by the next daemon
        assert.are.equal(0, #ep.requests())
        p = daemon(dir, data, pid, ep.url)
        h.wait_until(function() return #ep.requests() >= 1 end, "a report")
        local r = json.decode(ep.requests()[1].body)
        assert.are.equal(saved[1], r.first)
    end)

    it("keeps its samples across a reload of the script", function()
        local pid = target()
        local data, dir = h.tmpdir(), product(nil, "60m")
        local p = daemon(dir, data, pid, "http://127.0.0.1:9")
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        local function times() return ((h.state(data, "s").samples or {}).mem or {}).t or {} end
        h.wait_until(function() return #times() >= 3 end, "three samples kept")
        local first = times()[1]
        h.write(dir .. "/s.lua", h.slurp(dir .. "/s.lua"):gsub("resident memory",
                                                                "resident memory, again"))
        h.wait_for(p.err, 'msg=reloaded')
        local seen = #times()
        h.wait_until(function() return #times() > seen end, "a sample after the reload")
        assert.are.equal(first, times()[1])
    end)

    it("samples a source through the script's function; a failing one is said once, "
       .. "at its line", function()
        local dir, data, file = h.tmpdir(), h.tmpdir(), h.tmpdir() .. "/queue"
        h.write(file, "7\n")
        h.write(dir .. "/q.lua", string.format([[
return {
    name = "q", description = "a product whose queue length is sampled",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = "24h", interval = "24h" },
    optout = { default = "on" }, disclosure = { on = "on", off = "off" },
    sources = { { name = "queue", kind = "file", path = %q, description = "its length" } },
    samplers = { { name = "len", source = "queue", every = "1m", description = "length",
                   value = function(ctx)
                       local n = tonumber(ctx.sources.queue)
                       if not n then error("not a number: " .. ctx.sources.queue, 0) end
                       return n
                   end } },
    fields = { { name = "len", type = "array", items = "number", description = "d",
                 value = function(ctx) return ctx.samples.len.values end } },
}
]], file))
        local p = h.spawn({ "run", "--scripts", dir, "--data-dir", data, "--time-scale", "600" })
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        local function values() return ((h.state(data, "q").samples or {}).len or {}).v or {} end
        h.wait_until(function() return #values() >= 2 end, "two samples", 60)
        h.write(file, "nine\n")
        h.wait_until(function() return h.slurp(p.dir .. "/err"):match("sample not taken") end,
                     "the failure said", 60)
        h.write(file, "9\n")
        h.wait_until(function() return values()[#values()] == 9 end, "a sample of 9", 60)
        h.sh("kill -TERM " .. p.pid)
        assert.are.equal(0, h.exit_code(p, 60))
        local seen = {}
        for _, v in ipairs(values()) do seen[v] = true end
        assert.are.same({ [7] = true, [9] = true }, seen)
        local log = h.slurp(p.dir .. "/err")
        assert.are.equal(1, h.count(log, "sample not taken"))
        h.has('msg="sample not taken" error="' .. dir .. '/q.lua:7: not a number: nine" '
              .. 'sampler=len', log)
        -- show carries the window
        local r = h.run({ "show", "q", "--scripts", dir, "--data-dir", data })
        assert.are.same(values(), json.decode(r.out).len)
    end)
end)
