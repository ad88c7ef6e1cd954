-- StatsD input against the running daemon: lines of every type reach the report of the
-- product declaring them; a failed report keeps its window, a delivered one ends it;
-- what arrived survives kill -9, a restart and a reload; nothing is lost or counted twice
-- while reports go out; a burst of a million lines is counted, or its loss told; bad
-- addresses and bad lines are said and harm nothing. #integration
local json = require("phonehome.json")
local h = require("support.helper")

-- A scripts directory with product "m", declaring one metric of each kind, reporting
-- every ten minutes (first after first), a failed report dropped (as Electric does).
local function product(first)
    local dir = h.tmpdir()
    h.write(dir .. "/m.lua", string.format([[
return {
    name = "m",
    description = "a product that tells phonehome what it does",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = %q, interval = "10m" },
    optout = { default = "on" },
    disclosure = { on = "on", off = "off" },
    delivery = { retries = 0, drop_failed = true },
    metrics = {
        { name = "app.requests", type = "counter", description = "requests served" },
        { name = "app.clients", type = "gauge", description = "clients connected" },
        { name = "app.latency", type = "timer", description = "request latency" },
        { name = "app.users", type = "set", description = "users seen" },
    },
    fields = {
        { name = "requests", type = "number", description = "d",
          value = function(ctx) return ctx.metrics["app.requests"].value end },
        { name = "lines", type = "int", description = "d",
          value = function(ctx) return ctx.metrics["app.requests"].lines end },
        { name = "clients", type = "number", null = true, description = "d",
          value = function(ctx) return ctx.metrics["app.clients"].value end },
        { name = "latency", type = "object", null = true, description = "d",
          fields = {
              { name = "count", type = "int", description = "d" },
              { name = "min", type = "number", description = "d" },
              { name = "max", type = "number", description = "d" },
              { name = "median", type = "number", description = "d" },
              { name = "p90", type = "number", description = "d" },
          },
          value = function(ctx)
              local t = ctx.metrics["app.latency"]
              if t.count == 0 then return nil end
              return { count = t.count, min = t.min, max = t.max, median = t.median,
                       p90 = t.percentile(90) }
          end },
        { name = "users", type = "int", description = "d",
          value = function(ctx) return ctx.metrics["app.users"].count end },
    },
}
]], first or "24h"))
    return dir
end

-- The daemon at a time scale of 600 (a minute is 0.1 s), StatsD on a free UDP port;
-- returns the process and the address it listens on.
local function daemon(dir, data, url, extra)
    local args = { "run", "--scripts", dir, "--data-dir", data, "--endpoint", url,
                   "--time-scale", "600", "--statsd", "127.0.0.1:0" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    local p = h.spawn(args)
    local addr = h.wait_until(function()
        return h.slurp(p.dir .. "/err"):match("StatsD input listening[^\n]*udp=(127%.0%.0%.1:%d+)")
    end, "the StatsD listener", 60)
    return p, addr
end

local function send(addr, lines)
    return h.sh("printf '%s\\n' " .. table.concat((function()
        local q = {}
        for i, l in ipairs(lines) do q[i] = h.quote(l) end
        return q
    end)(), " ") .. " | " .. h.statsd_send() .. " " .. addr)
end

-- The lines of app.requests the product's state holds (drained from the listener).
local function held(data)
    local m = h.state(data, "m").metrics
    local n = 0
    for _, seg in ipairs(m and m.segments or {}) do
        n = n + (seg.aggs["app.requests"] and seg.aggs["app.requests"].lines or 0)
    end
    return n
end

local function stop(p)
    h.sh("kill -TERM " .. p.pid .. " 2>/dev/null")
    assert.are.equal(0, h.exit_code(p, 60))
end

-- One report now (--once), to the endpoint url; returns the run.
local function once(dir, data, url)
    return h.run({ "run", "--once", "--scripts", dir, "--data-dir", data, "--endpoint", url })
end

describe("StatsD input #integration", function()
    local to_stop = {}
    after_each(function()
        for i = #to_stop, 1, -1 do to_stop[i]() end
        to_stop = {}
        h.cleanup()
    end)
    local function later(fn) to_stop[#to_stop + 1] = fn end
    local function start(dir, data, url, extra)
        local p, addr = daemon(dir, data, url, extra)
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        return p, addr
    end

    it("gives a report every kind of line, its window kept when the report fails and "
       .. "ended when it is delivered", function()
        local dir, data = product(), h.tmpdir()
        local ep = h.endpoint("500,200,200")
        later(ep.stop)
        local p, addr = start(dir, data, "http://127.0.0.1:9")
        send(addr, { "app.requests:1|c", "app.requests:2|c|@0.5", "app.requests:1|c|#env:prod",
                     "app.clients:10|g", "app.clients:-3|g", "app.clients:+1|g",
                     "app.latency:10|ms", "app.latency:20|h", "app.latency:30|d",
                     "app.latency:40|ms|@0.5",
                     "app.users:alice|s", "app.users:bob|s", "app.users:alice|s",
                     "nobody.declares:1|c", "app.requests:oops|c", "app.requests:1|g" })
        h.wait_until(function() return held(data) == 3 end, "the lines in the state", 60)
        stop(p)
        -- the first report fails: the second carries the same window, then it is ended
        local first = once(dir, data, ep.url)
        assert.are.equal(1, first.code, first.err)
        assert.are.equal(0, once(dir, data, ep.url).code)
        local r1 = json.decode(ep.requests()[1].body)
        local r2 = json.decode(ep.requests()[2].body)
        assert.are.same(r1, r2)
        assert.are.same({ requests = 1 + 4 + 1, lines = 3, clients = 8, users = 2,
                          latency = { count = 5, min = 10, max = 40, median = 30, p90 = 40 } },
                        r1)
        -- the delivered report ended the window; the gauge keeps its value
        assert.are.equal(0, once(dir, data, ep.url).code)
        assert.are.same({ requests = 0, lines = 0, clients = 8, users = 0 },
                        json.without_nulls(json.decode(ep.requests()[3].body)))
        -- the bad lines were told: the name no product declares, the lines not understood
        local log = h.slurp(p.dir .. "/err")
        h.has('msg="StatsD metric dropped: no product declares it" lines=1 '
              .. 'metric=nobody.declares', log)
        h.has('msg="StatsD lines not understood"', log)
        local st = h.run({ "status", "--scripts", dir, "--data-dir", data })
        h.has("13 lines taken from 1 datagrams; dropped: 1 undeclared, 2 malformed "
              .. "(1 of the wrong type)", st.out)
    end)

    it("keeps what arrived across kill -9, a restart and a reload", function()
        local dir, data = product(), h.tmpdir()
        local p, addr = start(dir, data, "http://127.0.0.1:9")
        send(addr, { "app.requests:5|c", "app.clients:7|g", "app.users:a|s" })
        -- saved within a minute (0.1 s at this scale), then the daemon is killed
        h.wait_until(function() return held(data) == 1 end, "the lines in the state", 60)
        h.sh("kill -9 " .. p.pid)
        h.exit_code(p, 60)
        p, addr = start(dir, data, "http://127.0.0.1:9")
        -- the gauge's value came back with the daemon: a delta changes it
        send(addr, { "app.requests:2|c", "app.clients:+1|g", "app.users:b|s" })
        h.wait_until(function() return held(data) == 2 end, "the lines in the state", 60)
        -- a reload (the script changed) keeps the window and the listener
        h.write(dir .. "/m.lua", h.slurp(dir .. "/m.lua"):gsub('"d"', '"desc"'))
        h.wait_until(function() return h.slurp(p.dir .. "/err"):match("reloaded") end,
                     "the reload", 60)
        send(addr, { "app.requests:3|c" })
        h.wait_until(function() return held(data) == 3 end, "the lines in the state", 60)
        stop(p)
        local ep = h.endpoint("200")
        later(ep.stop)
        assert.are.equal(0, once(dir, data, ep.url).code)
        local r = json.decode(ep.requests()[1].body)
        assert.are.same({ 10, 3, 8, 2 }, { r.requests, r.lines, r.clients, r.users })
    end)

    it("loses nothing and counts nothing twice while reports go out", function()
        local dir, data = product("10m"), h.tmpdir()
        local ep = h.endpoint("200")
        later(ep.stop)
        local p, addr = start(dir, data, ep.url)
        -- a report a second; lines in 40 batches meanwhile
        local sent = 0
        for i = 1, 40 do
            local lines = {}
            for j = 1, 25 do
                lines[j] = "app.requests:" .. (i + j) .. "|c"
                sent = sent + i + j
            end
            send(addr, lines)
            h.sh("sleep 0.05")
        end
        h.wait_until(function() return #ep.requests() >= 2 end, "two reports", 60)
        stop(p)
        -- what came after the last report goes in the next
        assert.are.equal(0, once(dir, data, ep.url).code)
        local total, lines = 0, 0
        for _, req in ipairs(ep.requests()) do
            local r = json.decode(req.body)
            total, lines = total + r.requests, lines + r.lines
        end
        assert.are.equal(sent, total)
        assert.are.equal(40 * 25, lines)
    end)

    it("takes lines on a Unix datagram socket too", function()
        local dir, data = product(), h.tmpdir()
        local sock = h.tmpdir() .. "/statsd.sock"
        local p = start(dir, data, "http://127.0.0.1:9", { "--statsd-unix", sock })
        h.sh("printf 'app.requests:4|c\\n' | " .. h.statsd_send() .. " unix:" .. sock)
        h.wait_until(function() return held(data) == 1 end, "the line in the state", 60)
        stop(p)
        -- the socket file goes with the daemon
        assert.is_nil(io.open(sock))
    end)

    it("counts a burst of a million lines over UDP exactly, or tells what the kernel "
       .. "dropped", function()
        local dir, data = product(), h.tmpdir()
        local p, addr = start(dir, data, "http://127.0.0.1:9")
        local out = h.sh(h.statsd_send() .. " " .. addr .. " -n 1000000 -f 'app.requests:1|c'")
        h.has("1000000 lines", out)
        -- the last datagram in: the daemon drains at stop
        h.sh("sleep 0.5")
        stop(p)
        local counts = json.decode(h.slurp(data .. "/statsd.json"))
        local st = h.run({ "status", "--scripts", dir, "--data-dir", data })
        h.has(counts.lines .. " lines taken", st.out)
        h.has(counts.kernel_drops .. " datagrams by the kernel", st.out)
        if counts.kernel_drops == 0 then
            assert.are.equal(1000000, counts.lines)
        else
            assert.is_true(counts.lines < 1000000)
        end
        assert.are.equal(counts.lines, held(data))
        assert.are.equal(0, counts.malformed)
    end)

    it("says when it cannot listen, and the products go on", function()
        local dir, data = product("10m"), h.tmpdir()
        local ep = h.endpoint("200")
        later(ep.stop)
        local p = h.spawn({ "run", "--scripts", dir, "--data-dir", data, "--endpoint", ep.url,
                            "--time-scale", "600", "--statsd", "no-port-here" })
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        h.wait_until(function() return #ep.requests() >= 1 end, "a report", 60)
        stop(p)
        h.has('msg="StatsD input not listening; metrics are not received" '
              .. 'error="StatsD on udp no-port-here: \'no-port-here\' is not HOST:PORT"',
              h.slurp(p.dir .. "/err"))
        assert.are.equal(0, json.decode(ep.requests()[1].body).requests)
    end)

    it("counts a counter read from a source since the last report delivered", function()
        local dir, data, file = h.tmpdir(), h.tmpdir(), h.tmpdir() .. "/total"
        h.write(dir .. "/c.lua", string.format([[
return {
    name = "c", description = "a product whose counter is read from a file",
    endpoint = "http://127.0.0.1:9/report",
    schedule = { first = "24h", interval = "24h" },
    optout = { default = "on" }, disclosure = { on = "on", off = "off" },
    delivery = { retries = 0, drop_failed = true },
    sources = { { name = "total", kind = "file", path = %q, description = "the counter" } },
    fields = { { name = "new", type = "number", description = "d", source = "total",
                 value = function(ctx)
                     return ctx.increase("jobs", tonumber(ctx.sources.total))
                 end } },
}
]], file))
        local ep = h.endpoint("500,200,200,200")
        later(ep.stop)
        local function report(total)
            h.write(file, total .. "\n")
            once(dir, data, ep.url)
            return json.decode(ep.requests()[#ep.requests()].body).new
        end
        -- the first report fails: the second counts from nothing again
        assert.are.equal(10, report(10))
        assert.are.equal(15, report(15))
        -- delivered: the next counts from 15
        assert.are.equal(3, report(18))
        -- the counter went down: it restarted, all of it is new
        assert.are.equal(4, report(4))
    end)
end)
