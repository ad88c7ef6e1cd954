-- statsd.so at the C boundary: StatsD lines of every type counted into the declared
-- metrics' aggregates, malformed and undeclared ones counted, aggregates merged, sets
-- counted with HyperLogLog within bounds, and the sockets it listens on.
local core = require("phonehome.core")
local h = require("support.helper")

local function listener(metrics)
    local l = assert(core.statsd_listen({}))
    l:declare(metrics)
    return l
end

local function raised(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "no error raised")
    return tostring(err)
end

-- n lines from format (%d: 0 to n-1), fed in datagrams of 1000 lines.
local function feed_many(l, format, n, first)
    first = first or 0
    for start = first, first + n - 1, 1000 do
        local lines = {}
        for i = start, math.min(start + 999, first + n - 1) do
            lines[#lines + 1] = string.format(format, i)
        end
        l:feed(table.concat(lines, "\n"))
    end
end

describe("StatsD lines", function()
    it("count counters with their sample rates", function()
        local l = listener({ { name = "req", kind = "counter" } })
        l:feed("req:1|c\nreq:2|c|@0.5\nreq:-1|c\nreq:0.25|c|#route:/a,code:200")
        local aggs, stats = l:drain()
        assert.are.same({ kind = "counter", lines = 4, value = 1 + 4 - 1 + 0.25 }, aggs.req)
        assert.are.equal(4, stats.lines)
        assert.are.equal(0, stats.malformed)
        l:close()
    end)

    it("set gauges, change them with +/- deltas, and keep them across drains", function()
        local l = listener({ { name = "clients", kind = "gauge", value = 10 } })
        l:feed("clients:+5|g\nclients:-2|g")
        assert.are.equal(13, l:drain().clients.value)
        -- nothing came: not drained, but the value stays for the next delta
        assert.is_nil(l:drain().clients)
        l:feed("clients:-3|g")
        assert.are.equal(10, l:drain().clients.value)
        l:feed("clients:4|g")
        assert.are.equal(4, l:drain().clients.value)
        l:close()
    end)

    it("keep timers, histograms and distributions exactly while their values are few",
       function()
        local l = listener({ { name = "lat", kind = "histogram" } })
        l:feed("lat:10|ms\nlat:20|h\nlat:20|d\nlat:30|ms|@0.25")
        local a = l:drain().lat
        assert.are.equal(4, a.lines)
        assert.are.equal(1 + 1 + 1 + 4, a.count)      -- a sampled value stands for four
        assert.are.equal(10 + 20 + 20 + 30 * 4, a.sum)
        assert.are.same({ 10, 30 }, { a.min, a.max })
        assert.is_false(a.bucketed)
        local seen = {}
        for i, v in ipairs(a.values) do seen[v] = a.counts[i] end
        assert.are.same({ [10] = 1, [20] = 2, [30] = 4 }, seen)
        l:close()
    end)

    it("round a histogram's values to buckets within 1% once there are too many", function()
        local l = listener({ { name = "lat", kind = "histogram" } })
        feed_many(l, "lat:%d|ms", 5000, 1)
        local a = l:drain().lat
        assert.is_true(a.bucketed)
        assert.are.equal(5000, a.count)
        assert.are.equal(5000 * 5001 / 2, a.sum)
        assert.are.same({ 1, 5000 }, { a.min, a.max })
        assert.is_true(#a.values < 1000, #a.values .. " buckets")
        local n = 0
        for i, v in ipairs(a.values) do
            n = n + a.counts[i]
            -- each bucket's value is within 1% of the values it holds
            assert.is_true(v >= 0.99 and v <= 5000 * 1.01, tostring(v))
        end
        assert.are.equal(5000, n)
        l:close()
    end)

    it("count distinct values of a set and keep none of them", function()
        local l = listener({ { name = "users", kind = "set" } })
        l:feed("users:alice|s\nusers:bob|s\nusers:alice|s\nusers:carol|s|#env:prod")
        local a = l:drain().users
        assert.are.equal(3, a.distinct)
        assert.are.equal(4, a.lines)
        assert.is_nil(a.hll:find("alice", 1, true))
        l:close()
    end)

    it("are counted as malformed, never kept, whatever they hold", function()
        local l = listener({ { name = "req", kind = "counter" }, { name = "g", kind = "gauge" } })
        local bad = { "req", "req:", "req:1", "req:1|", "req:1|x", "req:abc|c", "req:1|c|@0",
                      "req:1|c|@2", "req:1|c|@x", "req:nan|c", "req:inf|c", "req:1e999|c",
                      "req:0x10|c", ":1|c", "req:1|c|zzz", "g:1|c", "req:1|g",
                      "req:1|c\0", "req:1|c|@1e-9", "req:1e16|c", "req:-2e15|ms",
                      string.rep("x", 5000) .. ":1|c", "\255\254:1|c" }
        l:feed(table.concat(bad, "\n"))
        local aggs, stats = l:drain()
        -- "\255\254" is a name no product declares; "x..." too
        assert.are.same({}, aggs)
        assert.are.equal(#bad - 2, stats.malformed)
        assert.are.equal(2, stats.wrong_type)
        assert.are.equal(2, stats.undeclared)
        assert.are.equal("req", stats.malformed_line)
        l:close()
    end)

    it("of names no product declares are counted by name, a bounded number of names",
       function()
        local l = listener({ { name = "req", kind = "counter" } })
        l:feed("other:1|c\nother:2|c\nreq:1|c")
        feed_many(l, "name%d:1|c", 200)
        local aggs, stats = l:drain()
        assert.are.equal(1, aggs.req.value)
        assert.are.equal(202, stats.undeclared)
        assert.are.equal(2, stats.undeclared_names.other)
        local names = 0
        for _ in pairs(stats.undeclared_names) do names = names + 1 end
        assert.are.equal(64, names)
        -- a drain starts again from nothing
        local _, again = l:drain()
        assert.are.same({}, again.undeclared_names)
        assert.are.equal(0, again.undeclared)
        l:close()
    end)

    it("end with \\n or \\r\\n, and empty lines are nothing", function()
        local l = listener({ { name = "req", kind = "counter" } })
        l:feed("req:1|c\r\n\n\nreq:2|c\n")
        local aggs, stats = l:drain()
        assert.are.equal(3, aggs.req.value)
        assert.are.equal(0, stats.malformed)
        l:close()
    end)
end)

describe("declaring metrics", function()
    it("keeps what a metric declared again holds, and forgets one no longer declared",
       function()
        local l = listener({ { name = "a", kind = "counter" }, { name = "b", kind = "counter" } })
        l:feed("a:1|c\nb:1|c")
        l:declare({ { name = "a", kind = "counter" }, { name = "c", kind = "set" } })
        local aggs = l:drain()
        assert.are.equal(1, aggs.a.value)
        assert.is_nil(aggs.b)
        l:close()
    end)

    it("is refused with the metric named when a declaration is bad", function()
        local l = listener({})
        h.has("bad metric #2", raised(l.declare, l, { { name = "a", kind = "counter" },
                                                      { name = "b", kind = "meter" } }))
        h.has("bad metric #1", raised(l.declare, l, { { name = "a:b", kind = "counter" } }))
        h.has("bad metric #2", raised(l.declare, l, { { name = "a", kind = "counter" },
                                                      { name = "a", kind = "gauge" } }))
        l:close()
        h.has("closed", raised(l.drain, l))
    end)
end)

describe("core.statsd_merge", function()
    it("adds counters, keeps a gauge's later value, merges histograms and sets", function()
        local l = listener({ { name = "c", kind = "counter" }, { name = "g", kind = "gauge" },
                             { name = "h", kind = "histogram" }, { name = "s", kind = "set" } })
        l:feed("c:2|c\ng:5|g\nh:1|ms\nh:2|ms\ns:a|s\ns:b|s")
        local one = l:drain()
        l:feed("c:3|c\ng:7|g\nh:2|ms\nh:9|ms\ns:b|s\ns:c|s")
        local two = l:drain()
        assert.are.same({ kind = "counter", lines = 2, value = 5 }, core.statsd_merge(one.c, two.c))
        assert.are.equal(7, core.statsd_merge(one.g, two.g).value)
        local m = core.statsd_merge(one.h, two.h)
        assert.are.same({ 4, 14, 1, 9 }, { m.count, m.sum, m.min, m.max })
        assert.are.equal(3, core.statsd_merge(one.s, two.s).distinct)
        l:close()
    end)

    it("merges an exact histogram with a bucketed one into buckets", function()
        local l = listener({ { name = "h", kind = "histogram" } })
        l:feed("h:7|ms")
        local exact = l:drain().h
        feed_many(l, "h:%d|ms", 2000, 1)
        local m = core.statsd_merge(exact, l:drain().h)
        assert.is_true(m.bucketed)
        assert.are.same({ 2001, 1, 2000 }, { m.count, m.min, m.max })
        l:close()
    end)

    it("names what is wrong with an aggregate read back from a file", function()
        local c = { kind = "counter", lines = 1, value = 1 }
        h.has("bad aggregate #2: not a counter",
              raised(core.statsd_merge, c, { kind = "set", lines = 1 }))
        h.has("bad aggregate #1: no kind", raised(core.statsd_merge, {}, c))
        h.has("bad aggregate #2: bad value",
              raised(core.statsd_merge, c, { kind = "counter", lines = 1, value = "x" }))
        h.has("bad aggregate #1: bad hll",
              raised(core.statsd_merge, { kind = "set", lines = 1, hll = "s1" },
                     { kind = "set", lines = 1 }))
        h.has("bad aggregate #1: bad hll",
              raised(core.statsd_merge, { kind = "set", lines = 1, hll = "s____" },
                     { kind = "set", lines = 1 }))
        h.has("values and counts",
              raised(core.statsd_merge, { kind = "histogram", lines = 1, count = 1, sum = 1,
                                          min = 1, max = 1, values = { 1 }, counts = {} },
                     { kind = "histogram", lines = 0 }))
        h.has("a value or count is not a number",
              raised(core.statsd_merge, { kind = "histogram", lines = 1, count = 1, sum = 1,
                                          min = 1, max = 1, values = { 1 }, counts = { 0 } },
                     { kind = "histogram", lines = 0, count = 0, sum = 0, min = 0, max = 0,
                       values = {}, counts = {} }))
    end)
end)

describe("a HyperLogLog set", function()
    -- the issue's bound: at most 2% off up to ten million distinct values
    for _, n in ipairs({ 10000, 1000000, 10000000 }) do
        it("counts " .. n .. " distinct values within 2%", function()
            local l = listener({ { name = "u", kind = "set" } })
            feed_many(l, "u:user-%d|s", n)
            local a = l:drain().u
            local err = math.abs(a.distinct - n) / n
            assert.is_true(err <= 0.02, a.distinct .. " for " .. n)
            -- and the same after the text it is saved as is read back
            local again = core.statsd_merge(a, { kind = "set", lines = 0 })
            assert.are.equal(a.distinct, again.distinct)
            assert.are.equal(a.hll, again.hll)
            l:close()
        end)
    end

    it("counts small sets within one value or 2%", function()
        local l = listener({ { name = "u", kind = "set" } })
        local set = { kind = "set", lines = 0 }
        for n = 1, 300 do
            l:feed("u:v" .. n .. "|s")
            set = core.statsd_merge(set, l:drain().u)
            assert.is_true(math.abs(set.distinct - n) <= math.max(1, 0.02 * n),
                           set.distinct .. " for " .. n)
        end
        l:close()
    end)
end)

describe("the sockets", function()
    it("take lines over UDP and over a Unix datagram socket, and tell once there is news",
       function()
        local dir = h.tmpdir()
        local told = 0
        local l = assert(core.statsd_listen({ udp = "127.0.0.1:0", unix = dir .. "/statsd.sock",
                                              on_data = function() told = told + 1 end }))
        l:declare({ { name = "req", kind = "counter" } })
        local addr = l:address()
        assert.matches("^127%.0%.0%.1:%d+$", addr)
        local send = h.statsd_send()
        h.sh("printf 'req:1|c\\nreq:1|c\\n' | " .. send .. " " .. addr)
        h.sh("printf 'req:5|c\\n' | " .. send .. " unix:" .. dir .. "/statsd.sock")
        -- run the loop until both datagrams are in
        local deadline = core.time() + 30
        local aggs = {}
        local function poll()
            core.timer(20, function()
                local got = l:drain()
                if got.req then
                    aggs.value = (aggs.value or 0) + got.req.value
                end
                if (aggs.value or 0) >= 7 or core.time() > deadline then return core.stop() end
                poll()
            end)
        end
        poll()
        core.run()
        assert.are.equal(7, aggs.value)
        assert.is_true(told >= 1)
        l:close()
        -- the socket file goes with the listener
        assert.is_false(core.exists(dir .. "/statsd.sock"))
    end)

    it("say which address cannot be used, and leave a file that is not a socket alone",
       function()
        local dir = h.tmpdir()
        local one = assert(core.statsd_listen({ udp = "127.0.0.1:0" }))
        local l, err = core.statsd_listen({ udp = one:address() })
        assert.is_nil(l)
        h.has("StatsD on udp " .. one:address() .. ": Address already in use", err)
        one:close()
        l, err = core.statsd_listen({ udp = "127.0.0.1" })
        assert.is_nil(l)
        h.has("is not HOST:PORT", err)
        l, err = core.statsd_listen({ udp = "no.such.host.invalid:8125" })
        assert.is_nil(l)
        h.has("StatsD on udp no.such.host.invalid:8125", err)
        h.write(dir .. "/file", "keep me")
        l, err = core.statsd_listen({ unix = dir .. "/file" })
        assert.is_nil(l)
        h.has("exists and is not a socket", err)
        assert.are.equal("keep me", h.slurp(dir .. "/file"))
    end)
end)
