-- Electric's report read from a running Electric, as an operator would run phonehome
-- beside it: the service's process (its release's command line and environment) and its
-- PostgreSQL holding Electric's own tables. Every figure is checked against what was set
-- up. #integration
local json = require("phonehome.json")
local sandbox = require("phonehome.sandbox")
local fixture = require("fixtures.electric.fixture")
local h = require("support.helper")
local postgres = require("support.postgres")

local CLUSTER = "a1336abd-804c-4d0c-a06a-c73da6dd148e"
local INSTANCE = "0d64597b-168b-45a2-ad64-a9baba55fd59"
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local STAMP = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"

local BEAM = fixture.BEAM

local pg
local cleanups = {}   -- run after each test (busted keeps only one finally per test)

local function later(fn) cleanups[#cleanups + 1] = fn end

-- A stand-in for a running Electric with that command line and env: its pid, killed
-- after the test.
local function electric(env, command)
    local pid = fixture.process(env, command)
    later(function() h.sh("kill " .. pid .. " 2>/dev/null") end)
    return pid
end

-- A stand-in whose memory grows, 100 KiB every 0.1 s for half a minute (Python, under
-- the release's command line): its pid.
local function growing_electric(env)
    local code = h.write(h.tmpdir() .. "/grow.py", "import time\na = []\n"
        .. "for i in range(300):\n    a.append(b'x' * 102400)\n    time.sleep(0.1)\n"
        .. "time.sleep(600)\n")
    return electric(env, "/usr/bin/python3 " .. h.quote(code))
end

-- Electric's tables, fresh, with the cluster id it saved on its first connection.
local function fresh_database()
    pg.psql("DROP SCHEMA IF EXISTS electric CASCADE;\n"
        .. h.slurp("spec/fixtures/electric/schema.sql")
        .. "INSERT INTO electric.transaction_marker (id, content) VALUES ('cluster_id', '\""
        .. CLUSTER .. "\"');")
end

-- A schema version as Electric saves it when it applies a migration (see the fixture).
local function migrate(version, tables, ago) fixture.migrate(pg, version, tables, ago) end

local function psql_value(sql)
    return h.sh("psql -X -At -h " .. h.quote(pg.dir) .. " -p " .. pg.port .. " -U " .. pg.user
        .. " -d " .. pg.dbname .. " -c " .. h.quote(sql))
end

local function show(args, env)
    local full = { "show", "electric", "--scripts", "scripts" }
    for _, a in ipairs(args) do full[#full + 1] = a end
    return h.run(full, env, 60)
end

local function run_once(pid, data, url, extra)
    local args = { "run", "electric", "--once", "--scripts", "scripts", "--data-dir", data,
                   "--pid", tostring(pid), "--endpoint", url }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return h.run(args, nil, 60)
end

-- The keys of a JSON text in the order they appear, and the order Electric's encoder
-- writes them in: every object's keys sorted.
local function key_order(text)
    local keys = {}
    for k in text:gmatch('"([^"]+)"%s*:') do keys[#keys + 1] = k end
    return keys
end

local function sorted_order(v, out)
    out = out or {}
    if type(v) ~= "table" then return out end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
        out[#out + 1] = k
        sorted_order(v[k], out)
    end
    return out
end

-- What Electric counts in memory, which a deployment pushes to phonehome over StatsD:
-- gauges (null until set), counters and sets (0 when nothing came), summaries (Electric's
-- empty one when nothing came).
local GAUGES = { "oldest_wal_time", "wal_cache_memory", "wal_transactions" }
local COUNTERS = { "distinct_clients", "distinct_users", "initial_syncs", "operations_from_pg",
    "operations_received_from_clients", "operations_sent_to_clients",
    "subscriptions_continued", "subscriptions_established", "transactions_from_pg",
    "transactions_received_from_clients", "transactions_sent_to_clients" }
local SUMMARIES = { "concurrent_clients", "subscriptions_continued_per_client",
    "subscriptions_included_tables", "subscriptions_rows_per_shape" }

describe("electric #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    setup(function() pg = postgres.start() end)
    teardown(function() if pg then pg.stop() end end)
    after_each(function()
        for i = #cleanups, 1, -1 do cleanups[i]() end
        cleanups = {}
        h.cleanup()
    end)

    it("finds the release's process by its command line", function()
        local p = assert(sandbox.open("scripts/electric.lua"))
        local pattern = p.def.process.command
        p:close()
        assert.is_truthy((BEAM .. " "):find(pattern))
        -- with a long node name too; never another release's VM
        assert.is_truthy((BEAM:gsub("%-sname electric", "-name electric@10.0.0.7")):find(pattern))
        assert.is_nil((BEAM:gsub("%-sname electric", "-sname other")):find(pattern))
    end)

    it("reads every figure from Electric's process and PostgreSQL", function()
        fresh_database()
        migrate("20240101000000", { "public.a", "public.b", "public.c", "public.d" }, "1 day")
        local before = os.time()
        local pid = electric({ DATABASE_URL = pg.url, ELECTRIC_INSTANCE_ID = INSTANCE,
                               RELEASE_NAME = "electric", RELEASE_VSN = "0.12.1" })
        -- a migration Electric applied since it started: its tables less its own shadows
        migrate("20240601000000", { "public.items", "public.projects",
            "electric.shadow__public__items", "electric.shadow__public__projects" })
        local r = show({ "--data-dir", h.tmpdir() })
        local after = os.time()
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("", r.err)
        local out = json.decode(r.out)
        assert.are.equal(json.null, out.last_reported)
        assert.matches(STAMP, out.timestamp)
        assert.is_true(out.timestamp >= os.date("!%Y-%m-%dT%H:%M:%S", before))
        assert.is_true(out.timestamp < os.date("!%Y-%m-%dT%H:%M:%S", after + 1))
        local data = out.data
        assert.are.equal("0.12.1", data.electric_version)
        local env = data.environment
        local machine = h.sh("uname -m")
        assert.are.equal(machine .. (machine:match("^x86") and "-pc" or "-unknown")
            .. "-linux-gnu", env.arch)
        assert.are.equal(tonumber(h.sh("nproc --all")), env.cores)
        assert.are.equal(CLUSTER, env.electric_cluster_uuid)
        assert.are.equal(INSTANCE, env.electric_instance_id)
        assert.are.same({ family = "unix", name = "linux" }, env.os)
        assert.are.equal(psql_value("SHOW server_version"), env.pg_version)
        assert.are.equal(tonumber(h.sh("awk '/^MemTotal:/ { print $2 }' /proc/meminfo")) * 1024,
                         env.ram)
        local res = data.resources
        local rss = tonumber(h.sh("awk '/^VmRSS:/ { print $2 }' /proc/" .. pid .. "/status"))
            * 1024
        assert.are.same({ max = rss, mean = rss, median = rss, min = rss, mode = rss },
                        res.used_memory)
        -- Electric's mean is a float, as Jason writes it
        h.has('"mean":' .. rss .. ".0,", r.out)
        assert.is_true(res.uptime >= 0 and res.uptime <= after - before + 1, res.uptime)
        for _, k in ipairs(GAUGES) do assert.are.equal(json.null, res[k], k) end
        assert.are.equal(2, data.usage.electrified_tables)
        for _, k in ipairs(COUNTERS) do assert.are.equal(0, data.usage[k], k) end
        for _, k in ipairs(SUMMARIES) do
            assert.are.same({ min = 0, max = 0, mean = 0, median = 0, mode = json.null },
                            data.usage[k], k)
        end
        -- keys as Electric's encoder writes them: data, last_reported, timestamp; max, mean,
        -- median, min, mode; every object sorted
        assert.are.same(sorted_order(out), key_order(r.out))
        assert.matches('^{"data":{.*},"last_reported":null,"timestamp":"[^"]+"}\n$', r.out)
        h.has('"used_memory":{"max":', r.out)
        -- the database's password appears nowhere
        for _, text in ipairs({ r.out, show({ "--data-dir", h.tmpdir(), "--explain" }).out,
                                h.run({ "docs", "electric", "--scripts", "scripts" }).out }) do
            assert.is_nil(text:find(pg.password, 1, true))
            assert.is_nil(text:find("SECRETCOOKIE", 1, true))
        end
    end)

    it("takes the database from electric.database_url, else says what is missing", function()
        fresh_database()
        local pid = electric({})
        local r = show({ "--data-dir", h.tmpdir(), "--pid", tostring(pid),
                         "--set", "electric.database_url=" .. pg.url,
                         "--set", "electric.electric_version=0.11.0" })
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.equal(CLUSTER, out.data.environment.electric_cluster_uuid)
        assert.are.equal(psql_value("SHOW server_version"), out.data.environment.pg_version)
        assert.are.equal("0.11.0", out.data.electric_version)
        -- no migration since Electric started: 0, as Electric reports it
        assert.are.equal(0, out.data.usage.electrified_tables)
        -- a random instance id when the environment gives none
        assert.matches(UUID, out.data.environment.electric_instance_id)
        r = show({ "--data-dir", h.tmpdir(), "--pid", tostring(pid) })
        assert.are.equal(0, r.code, r.err)
        out = json.decode(r.out)
        assert.are.equal(json.null, out.data.environment.pg_version)
        assert.are.equal(json.null, out.data.usage.electrified_tables)
        assert.are.equal(json.null, out.data.electric_version)
        assert.matches("field 'data.environment.pg_version': source 'db' failed: option "
            .. "'database': .-DATABASE_URL is not set in Electric's environment; set "
            .. "electric.database_url", r.err)
        -- the cluster id falls back to phonehome's own
        assert.matches(UUID, out.data.environment.electric_cluster_uuid)
        assert.are_not.equal(CLUSTER, out.data.environment.electric_cluster_uuid)
    end)

    it("without Electric running: null figures, the database's failure logged, and a "
       .. "quiet check", function()
        local r = show({ "--data-dir", h.tmpdir(), "--set",
                         "electric.database_url=postgresql://u:pw-xyz@127.0.0.1:1/db" })
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.equal(json.null, out.data.electric_version)
        assert.are.equal(json.null, out.data.environment.electric_instance_id)
        assert.are.equal(json.null, out.data.resources.uptime)
        assert.are.equal(json.null, out.data.resources.used_memory)
        assert.are.equal(json.null, out.data.environment.pg_version)
        assert.matches("field 'data.environment.pg_version': source 'db' failed: .-refused", r.err)
        assert.is_nil(r.err:find("pw-xyz", 1, true))
        -- a dry build reads nothing: nothing to warn about
        r = h.run({ "check", "scripts/electric.lua" })
        assert.are.equal(0, r.code)
        assert.are.equal("", r.err)
    end)

    it("sends last_reported and the figures of its period; starts over when Electric "
       .. "restarts", function()
        fresh_database()
        local data = h.tmpdir()
        local pid = electric({ DATABASE_URL = pg.url })
        migrate("1", { "public.items", "public.projects", "electric.shadow__public__items" })
        local ep = h.endpoint("201")
        later(ep.stop)
        local r = run_once(pid, data, ep.url)
        assert.are.equal(0, r.code, r.err)
        local first = json.decode(ep.requests()[1].body)
        assert.are.equal(json.null, first.last_reported)
        assert.are.equal(2, first.data.usage.electrified_tables)
        local id = first.data.environment.electric_instance_id
        assert.matches(UUID, id)
        -- the next report: since the first, in the same run of Electric
        r = run_once(pid, data, ep.url)
        assert.are.equal(0, r.code, r.err)
        local second = json.decode(ep.requests()[2].body)
        assert.are.equal(first.timestamp, second.last_reported)
        assert.are.equal(0, second.data.usage.electrified_tables)
        assert.are.equal(id, second.data.environment.electric_instance_id)
        -- Electric restarted: a first report again, with a new instance id
        h.sh("kill " .. pid)
        pid = electric({ DATABASE_URL = pg.url })
        r = run_once(pid, data, ep.url)
        assert.are.equal(0, r.code, r.err)
        local again = json.decode(ep.requests()[3].body)
        assert.are.equal(json.null, again.last_reported)
        assert.are.equal(0, again.data.usage.electrified_tables)
        assert.matches(UUID, again.data.environment.electric_instance_id)
        assert.are_not.equal(id, again.data.environment.electric_instance_id)
    end)

    it("takes the usage figures the deployment pushes over StatsD", function()
        fresh_database()
        local pid = electric({ DATABASE_URL = pg.url })
        local data = h.tmpdir()
        local p = h.spawn({ "run", "electric", "--scripts", "scripts", "--data-dir", data,
                            "--pid", tostring(pid), "--endpoint", "http://127.0.0.1:9",
                            "--statsd", "127.0.0.1:0" })
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        local addr = h.wait_until(function()
            return h.slurp(p.dir .. "/err"):match("StatsD input listening[^\n]*udp=([%d.:]+)")
        end, "the StatsD listener", 60)
        local wal = os.time() - 30
        local lines = { "electric.initial_syncs:1|c", "electric.initial_syncs:1|c|@0.5",
            "electric.operations_from_pg:40|c", "electric.transactions_from_pg:2|c",
            "electric.distinct_clients:c1|s", "electric.distinct_clients:c2|s",
            "electric.distinct_clients:c1|s", "electric.distinct_users:u1|s",
            "electric.subscriptions_included_tables:2|h",
            "electric.subscriptions_included_tables:2|h",
            "electric.subscriptions_included_tables:5|h",
            "electric.wal_cache_memory:2520|g", "electric.wal_transactions:2|g",
            "electric.oldest_wal_time:" .. wal .. "|g", "electric.concurrent_clients:3|g" }
        h.sh("printf '%s\\n' " .. table.concat((function()
            local q = {}
            for i, l in ipairs(lines) do q[i] = h.quote(l) end
            return q
        end)(), " ") .. " | " .. h.statsd_send() .. " " .. addr)
        -- the gauge of connected clients is sampled every 2 s
        h.wait_until(function()
            local st = h.state(data, "electric")
            return st.samples and st.samples.clients and #st.samples.clients.v > 0
        end, "a sample of the connected clients", 60)
        h.sh("kill -TERM " .. p.pid)
        assert.are.equal(0, h.exit_code(p, 60))
        local ep = h.endpoint("201")
        later(ep.stop)
        assert.are.equal(0, run_once(pid, data, ep.url).code)
        local out = json.decode(ep.requests()[1].body).data
        local u = out.usage
        assert.are.same({ 3, 40, 2, 2, 1 }, { u.initial_syncs, u.operations_from_pg,
                                             u.transactions_from_pg, u.distinct_clients,
                                             u.distinct_users })
        assert.are.equal(0, u.operations_sent_to_clients)
        assert.are.same({ min = 2, max = 5, mean = 3, median = 2, mode = 2 },
                        u.subscriptions_included_tables)
        assert.are.same({ min = 3, max = 3, mean = 3, median = 3, mode = 3 },
                        u.concurrent_clients)
        assert.are.same({ 2520, 2, os.date("!%Y-%m-%dT%H:%M:%S.000000Z", wal) },
                        { out.resources.wal_cache_memory, out.resources.wal_transactions,
                          out.resources.oldest_wal_time })
    end)

    it("summarises the memory it sampled every 2 s since the last report", function()
        fresh_database()
        local pid = growing_electric({ DATABASE_URL = pg.url })
        local rss = function()
            return tonumber(h.sh("awk '/^VmRSS:/ { print $2 }' /proc/" .. pid .. "/status"))
                * 1024
        end
        local ep = h.endpoint("201")
        later(ep.stop)
        -- at a time scale of 60 it samples every 33 ms; the first report is due after 5 s
        local p = h.spawn({ "run", "electric", "--scripts", "scripts", "--data-dir",
                            h.tmpdir(), "--pid", tostring(pid), "--endpoint", ep.url,
                            "--time-scale", "60" })
        later(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        h.wait_until(function() return #ep.requests() >= 1 end, "a report")
        local at_end = rss()
        local m = json.decode(ep.requests()[1].body).data.resources.used_memory
        -- the memory grew while it was sampled: a window, not one reading
        assert.is_true(m.min < m.max and m.max <= at_end,
                       table.concat({ m.min, m.max, at_end }, " "))
        assert.is_true(m.min <= m.median and m.median <= m.max)
    end)

    it("delivers as Electric: Req's User-Agent, its retries, a failed report dropped and "
       .. "its figures carried into the next", function()
        fresh_database()
        local data = h.tmpdir()
        local pid = electric({ DATABASE_URL = pg.url })
        migrate("1", { "public.items", "public.projects" })
        local ep = h.endpoint("201")
        later(ep.stop)
        local r = run_once(pid, data, ep.url)
        assert.are.equal(0, r.code, r.err)
        local req = ep.requests()
        assert.matches("\n[Uu]ser%-[Aa]gent: req/0%.5%.0\r?\n", "\n" .. req[1].headers)
        local first = json.decode(req[1].body)
        -- a migration, then a send that fails after Electric's 3 retries: not resent
        migrate("2", { "public.items", "public.projects", "public.tags" })
        local down = h.endpoint("503")
        later(down.stop)
        r = run_once(pid, data, down.url, { "--time-scale", "1000" })
        assert.are.equal(1, r.code, r.err)
        assert.are.equal(4, #down.requests())
        assert.matches("report dropped: the product does not resend", r.err)
        -- its figures come with the next report, whose period still starts at the first
        r = run_once(pid, data, ep.url)
        assert.are.equal(0, r.code, r.err)
        req = ep.requests()
        assert.are.equal(2, #req)
        local third = json.decode(req[2].body)
        assert.are.equal(first.timestamp, third.last_reported)
        assert.are.equal(3, third.data.usage.electrified_tables)
        assert.are.equal(first.data.environment.electric_instance_id,
                         third.data.environment.electric_instance_id)
    end)

    it("drops the carried figures once sends have failed for 24 hours", function()
        fresh_database()
        local pid = electric({ DATABASE_URL = pg.url })
        migrate("1", { "public.items" })
        -- the previous report of this run of Electric failed, as every one for 2 days
        local now = os.time()
        local stamp = os.date("!%Y-%m-%dT%H:%M:%S.000000Z", now + 1)
        local function previous(last_reported)
            local data = h.tmpdir()
            h.sh("mkdir -p " .. data .. "/electric")
            h.write(data .. "/electric/last.json", json.encode({ last_reported = last_reported,
                timestamp = stamp, data = { environment = { electric_instance_id = INSTANCE } } }))
            return data
        end
        local r = show({ "--pid", tostring(pid), "--data-dir",
                         previous(os.date("!%Y-%m-%dT%H:%M:%S.000000Z", now - 2 * 86400)) })
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.equal(stamp, out.last_reported)
        assert.are.equal(0, out.data.usage.electrified_tables)
        assert.are.equal(INSTANCE, out.data.environment.electric_instance_id)
        -- failing for less than a day: still carried
        local hour_ago = os.date("!%Y-%m-%dT%H:%M:%S.000000Z", now - 3600)
        r = show({ "--pid", tostring(pid), "--data-dir", previous(hour_ago) })
        assert.are.equal(0, r.code, r.err)
        out = json.decode(r.out)
        assert.are.equal(hour_ago, out.last_reported)
        assert.are.equal(1, out.data.usage.electrified_tables)
    end)

    it("turns off with ELECTRIC_TELEMETRY in Electric's environment, with Electric's values",
       function()
        local ep = h.endpoint("201")
        later(ep.stop)
        for _, v in ipairs({ "0", "f", "false", "disable", "disabled", "n", "no", "off" }) do
            local pid = electric({ ELECTRIC_TELEMETRY = v })
            local r = run_once(pid, h.tmpdir(), ep.url)
            assert.are.equal(0, r.code, r.err)
            assert.matches('msg="not sending" reason="ELECTRIC_TELEMETRY=' .. v
                .. ' %(product process ' .. pid .. '%)"', r.err)
            h.sh("kill " .. pid)
        end
        assert.are.equal(0, #ep.requests())
        local sent = 0
        for _, v in ipairs({ "1", "t", "true", "enable", "enabled", "y", "yes", "on" }) do
            local pid = electric({ ELECTRIC_TELEMETRY = v, DATABASE_URL = pg.url })
            local r = run_once(pid, h.tmpdir(), ep.url)
            assert.are.equal(0, r.code, r.err)
            sent = sent + 1
            assert.are.equal(sent, #ep.requests(), v)
            h.sh("kill " .. pid)
        end
        -- any other value stops Electric at start; phonehome does not report for it
        local pid = electric({ ELECTRIC_TELEMETRY = "maybe" })
        local r = run_once(pid, h.tmpdir(), ep.url)
        h.has('ELECTRIC_TELEMETRY=\\"maybe\\" is neither on', r.err)
        assert.are.equal(sent, #ep.requests())
    end)

    it("documents every query, variable and setting it reads", function()
        local r = h.run({ "docs", "electric", "--scripts", "scripts" })
        assert.are.equal(0, r.code, r.err)
        h.has("SHOW server_version", r.out)
        h.has("SELECT content->>0 AS id FROM electric.transaction_marker WHERE id = "
            .. "'cluster_id'", r.out)
        h.has('FROM electric."schema" WHERE created_at > CAST(:since AS timestamptz)', r.out)
        for _, v in ipairs({ "DATABASE_URL", "ELECTRIC_INSTANCE_ID", "ELECTRIC_TELEMETRY",
                             "RELEASE_VSN" }) do
            h.has("reads its variable `" .. v .. "`", r.out)
        end
        h.has("| `database_url` | string |", r.out)
        h.has("| `electric_version` | string |", r.out)
        h.has("used by: `data.environment.pg_version`, `data.usage.electrified_tables`", r.out)
        -- what Electric counts in memory says which StatsD metric it comes from
        h.has("| `data.usage.initial_syncs` | int | Initial syncs served. From the StatsD "
            .. "metric electric.initial_syncs the deployment pushes", r.out)
        h.has("| `electric.distinct_users` | set | `s` |", r.out)
    end)
end)
