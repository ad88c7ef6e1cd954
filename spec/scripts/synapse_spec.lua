-- The Synapse script against a homeserver in Synapse's own formats: homeserver.yaml and
-- its logging YAML, the main database with known rows (SQLite, and the real PostgreSQL),
-- a metrics listener on 127.0.0.1 and a process with Synapse's command line. Every
-- figure is checked against what Synapse's own queries give for those rows. #integration
local core = require("phonehome.core")
local json = require("phonehome.json")
local h = require("support.helper")
local postgres = require("support.postgres")
local synapse = require("fixtures.synapse.fixture")

local function show(config, more)
    local args = { "show", "synapse", "--scripts", "scripts", "--data-dir", h.tmpdir(),
                   "--set", "synapse.config=" .. config }
    for _, a in ipairs(more or {}) do args[#args + 1] = a end
    return h.run(args, nil, 60)
end

-- Asserts the figures the database gives.
local function database_figures(out)
    for k, v in pairs(synapse.expected) do assert.are.equal(v, out[k], k) end
end

describe("synapse #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    -- what a test started, stopped after it whatever happens (busted keeps one finally)
    local to_stop = {}
    local function stop_later(fn) to_stop[#to_stop + 1] = fn end
    after_each(function()
        for i = #to_stop, 1, -1 do to_stop[i]() end
        to_stop = {}
        h.cleanup()
    end)

    it("reports every figure from homeserver.yaml, its log config, the SQLite database, the "
       .. "metrics listener and the homeserver's process", function()
        local d = h.tmpdir()
        local metrics = synapse.metrics()
        stop_later(metrics.stop)
        local config = synapse.homeserver(d, synapse.sqlite_section(synapse.sqlite(d)),
                                          { metrics_port = metrics.port })
        local before, started = os.time(), core.monotonic()
        local proc = synapse.process(config, d .. "/homeserver.pid")
        stop_later(proc.stop)
        local running = core.monotonic()
        -- a second old at least when phonehome reads it, so that its CPU share is small
        h.sh("sleep 1")
        local cpu_before, reading = synapse.cpu(proc.pid), core.monotonic()
        local r = show(config, { "--pidfile", proc.pidfile })
        local cpu_after = synapse.cpu(proc.pid)
        local after, ended = os.time(), core.monotonic()
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("", r.err)
        local out = json.decode(r.out)
        database_figures(out)
        assert.are.equal("example.org", out.homeserver)
        assert.are.equal("fleet-a", out.server_context)
        assert.are.equal(0.75, out.cache_factor)
        assert.are.equal(20480, out.event_cache_size)
        assert.are.equal("sqlite3", out.database_engine)
        assert.are.equal(synapse.sqlite_version(), out.database_server_version)
        assert.are.equal("WARNING", out.log_level)
        assert.are.equal("3.11.4", out.python_version)
        -- the homeserver's process, by the pid file
        assert.are.equal(synapse.peak_rss(proc.pid), out.memory_rss)
        -- since it started: its CPU time and age, read around phonehome's reading, bound it
        local low = math.floor(cpu_before / (ended - started) * 100)
        local high = math.ceil(cpu_after / (reading - running) * 100)
        assert.is_true(out.cpu_average >= low and out.cpu_average <= high,
                       table.concat({ low, out.cpu_average, high }, " <= "))
        assert.is_true(out.uptime_seconds >= 1 and out.uptime_seconds <= after - before + 1,
                       tostring(out.uptime_seconds))
        assert.is_true(out.timestamp >= before and out.timestamp <= after)
    end)

    it("runs the same queries on PostgreSQL, connected with the psycopg2 arguments, and "
       .. "never shows the password", function()
        local pg = postgres.start()
        stop_later(pg.stop)
        synapse.postgres(pg)
        local d = h.tmpdir()
        local config = synapse.homeserver(d, synapse.postgres_section(pg))
        local proc = synapse.process(config, d .. "/homeserver.pid")
        stop_later(proc.stop)
        local r = show(config, { "--pidfile", proc.pidfile })
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("", r.err)
        local out = json.decode(r.out)
        database_figures(out)
        assert.are.equal("psycopg2", out.database_engine)
        assert.are.equal(synapse.postgres_version(pg), out.database_server_version)
        assert.matches("^1%d%.%d+$", out.database_server_version)
        -- no metrics listener: Synapse's Python version cannot be known
        assert.are.equal(json.null, out.python_version)
        local explain = show(config, { "--pidfile", proc.pidfile, "--explain" })
        assert.are.equal(0, explain.code, explain.err)
        assert.matches("db%s+sql", explain.out)
        for _, text in ipairs({ r.out, r.err, explain.out, explain.err }) do
            assert.is_nil(text:find(pg.password, 1, true))
        end
    end)

    it("takes Synapse's defaults for what homeserver.yaml leaves out", function()
        local d = h.tmpdir()
        local config = synapse.homeserver(d, synapse.sqlite_section(synapse.sqlite(d)),
            { omit = { server_context = true, event_cache_size = true, caches = true,
                       log_config = true } })
        local proc = synapse.process(config, d .. "/homeserver.pid")
        stop_later(proc.stop)
        local r = show(config, { "--pidfile", proc.pidfile })
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("", r.err)
        local out = json.decode(r.out)
        -- a float, as Synapse sends its default
        assert.matches('"cache_factor":0%.5[,}]', r.out)
        assert.are.equal(10240, out.event_cache_size)
        -- without a log config Synapse logs at INFO
        assert.are.equal("INFO", out.log_level)
        assert.are.equal(json.null, out.server_context)
        assert.are.equal(json.null, out.python_version)
        database_figures(out)
    end)

    it("reads the effective level of the synapse logger, else the root logger's", function()
        local d = h.tmpdir()
        local db = synapse.sqlite_section(synapse.sqlite(d))
        local proc = synapse.process(d .. "/homeserver.yaml", d .. "/homeserver.pid")
        stop_later(proc.stop)
        local function level(log, extra)
            local config = synapse.homeserver(d, db, { log = log, extra = extra })
            local r = show(config, { "--pidfile", proc.pidfile })
            assert.are.equal(0, r.code, r.err)
            return json.decode(r.out)
        end
        -- no level for synapse: the root's
        assert.are.equal("DEBUG", level("version: 1\nloggers:\n  synapse.storage.SQL:\n"
            .. "    level: ERROR\n  synapse: {}\nroot:\n  level: DEBUG\n").log_level)
        -- no root level either: Python's root logger starts at WARNING
        assert.are.equal("WARNING", level("version: 1\nroot:\n  handlers: []\n").log_level)
        -- numeric levels and Python's aliases
        assert.are.equal("ERROR", level("version: 1\nloggers:\n  synapse:\n    level: 40\n")
            .log_level)
        assert.are.equal("CRITICAL", level("version: 1\nloggers:\n  synapse:\n"
            .. "    level: FATAL\n").log_level)
        -- integral cache factors stay integers, sizes in Synapse's syntax
        local out = level(nil, "")
        assert.are.equal("WARNING", out.log_level)
        local config = synapse.homeserver(d, db, { omit = { caches = true,
            event_cache_size = true }, extra = "caches:\n  global_factor: 2\n"
            .. "event_cache_size: 3M" })
        local r = show(config, { "--pidfile", proc.pidfile })
        assert.are.equal(0, r.code, r.err)
        assert.matches('"cache_factor":2[,}]', r.out)
        assert.are.equal(3 * 1024 * 1024, json.decode(r.out).event_cache_size)
    end)

    it("finds the homeserver by its command line, and checks it against pid_file", function()
        local d = h.tmpdir()
        local db = synapse.sqlite_section(synapse.sqlite(d))
        -- without a pid_file: the oldest process with Synapse's command line, ours or older
        local config = synapse.homeserver(d, db, { omit = { pid_file = true } })
        local proc = synapse.process(config, d .. "/homeserver.pid")
        stop_later(proc.stop)
        local r = show(config)
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        assert.are.equal("integer", math.type(out.memory_rss))
        assert.are.equal("integer", math.type(out.uptime_seconds))
        -- a process that is not the one homeserver.yaml's pid_file names is not measured
        config = synapse.homeserver(d, db)
        local other = tonumber(h.sh("sleep 60 >/dev/null 2>&1 & echo $!"))
        stop_later(function() h.sh("kill " .. other) end)
        r = show(config, { "--pid", tostring(other) })
        assert.are.equal(0, r.code, r.err)
        out = json.decode(r.out)
        assert.are.same({ json.null, json.null, json.null },
                        { out.memory_rss, out.cpu_average, out.uptime_seconds })
        assert.matches("field 'memory_rss': the process found %(pid " .. other .. "%) is not "
            .. "the homeserver of .-homeserver%.yaml, whose pid_file holds " .. proc.pid, r.err)
        assert.are.equal(8, out.total_users)
    end)

    it("reports null for what it cannot read, and says why, never 0", function()
        local d = h.tmpdir()
        local config = synapse.homeserver(d, synapse.sqlite_section(d .. "/missing.db"))
        local proc = synapse.process(config, d .. "/homeserver.pid")
        stop_later(proc.stop)
        local r = show(config, { "--pidfile", proc.pidfile })
        assert.are.equal(0, r.code, r.err)
        local out = json.decode(r.out)
        for k in pairs(synapse.expected) do
            assert.are.equal(json.null, out[k], k)
            assert.matches("field '" .. k .. "': source '%a+' failed: .-missing%.db", r.err)
        end
        assert.are.equal(json.null, out.database_server_version)
        -- what homeserver.yaml says is still reported
        assert.are.equal("example.org", out.homeserver)
        assert.are.equal("sqlite3", out.database_engine)
        -- no homeserver.yaml at all: only the time and the process's figures
        r = show(d .. "/nothing.yaml", { "--pidfile", proc.pidfile })
        assert.are.equal(0, r.code, r.err)
        out = json.decode(r.out)
        assert.are.equal("integer", math.type(out.timestamp))
        assert.are.equal("integer", math.type(out.memory_rss))
        for _, k in ipairs({ "homeserver", "total_users", "cache_factor", "log_level",
                             "database_engine", "python_version" }) do
            assert.are.equal(json.null, out[k], k)
        end
        assert.matches("field 'cache_factor': source 'config' failed: .-nothing%.yaml", r.err)
        -- Debian keeps server_name in conf.d: without it, said, and given with --set
        config = synapse.homeserver(d, synapse.sqlite_section(synapse.sqlite(d)),
                                    { omit = { server_name = true } })
        r = show(config, { "--pidfile", proc.pidfile })
        assert.are.equal(json.null, json.decode(r.out).homeserver)
        assert.matches("field 'homeserver': server_name is in none of the homeserver's config "
            .. "files", r.err)
        r = show(config, { "--pidfile", proc.pidfile, "--set", "synapse.server_name=example.org" })
        assert.are.equal("", r.err)
        out = json.decode(r.out)
        assert.are.equal("example.org", out.homeserver)
        assert.are.equal(2, out.daily_sent_messages)
    end)

    it("sends only when homeserver.yaml says report_stats: true", function()
        local d = h.tmpdir()
        local db = synapse.sqlite_section(synapse.sqlite(d))
        local proc = synapse.process(d .. "/homeserver.yaml", d .. "/homeserver.pid")
        stop_later(proc.stop)
        local function run(report_stats, more)
            local config = synapse.homeserver(d, db, { omit = { report_stats = true },
                extra = report_stats and ("report_stats: " .. report_stats) or nil })
            local ep = h.endpoint("200")
            local args = { "run", "synapse", "--once", "--scripts", "scripts", "--data-dir",
                           h.tmpdir(), "--endpoint", ep.url, "--pidfile", proc.pidfile,
                           "--set", "synapse.config=" .. config }
            for _, a in ipairs(more or {}) do args[#args + 1] = a end
            local r = h.run(args, nil, 60)
            ep.stop()
            return r, ep.requests()
        end
        local r, sent = run("true")
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(1, #sent)
        assert.are.equal("/v1/report/synapse", sent[1].path)
        assert.are.equal(8, json.decode(sent[1].body).total_users)
        r, sent = run("false")
        assert.are.equal(0, #sent)
        assert.matches("not sending.-setting report_stats=false", r.err)
        -- Synapse refuses to start without it; phonehome sends nothing
        r, sent = run(nil)
        assert.are.equal(0, #sent)
        assert.matches("not sending", r.err)
        -- the operator's --set wins over the file
        r, sent = run("false", { "--set", "synapse.report_stats=true" })
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(1, #sent)
    end)

    it("reads the config files Synapse merges: its process's --config-path, Debian's conf.d",
       function()
        local d = h.tmpdir()
        local db = synapse.sqlite_section(synapse.sqlite(d))
        -- Debian's layout: server_name and report_stats only in conf.d, read after
        -- homeserver.yaml as the unit's second --config-path
        local config = synapse.homeserver(d, db, { omit = { server_name = true,
                                                            report_stats = true } })
        h.sh("mkdir " .. d .. "/conf.d")
        h.write(d .. "/conf.d/server_name.yaml", 'server_name: "example.org"\n')
        h.write(d .. "/conf.d/report_stats.yaml", "report_stats: true\n")
        h.write(d .. "/conf.d/zz-context.yaml", "server_context: fleet-b\n")
        local proc = synapse.process(config, d .. "/homeserver.pid",
                                     "--config-path=" .. d .. "/conf.d/")
        stop_later(proc.stop)
        local ep = h.endpoint("200")
        stop_later(ep.stop)
        local r = h.run({ "run", "synapse", "--once", "--scripts", "scripts", "--data-dir",
                          h.tmpdir(), "--endpoint", ep.url, "--pidfile", proc.pidfile,
                          "--set", "synapse.config=" .. config }, nil, 60)
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(1, #ep.requests())
        local sent = json.decode(ep.requests()[1].body)
        assert.are.equal("example.org", sent.homeserver)
        assert.are.equal("fleet-b", sent.server_context)
        assert.are.equal(2, sent.daily_sent_messages)
        -- the process's files do not include a homeserver.yaml elsewhere: that one alone
        local other = h.tmpdir()
        config = synapse.homeserver(other, db, { omit = { report_stats = true } })
        r = show(config, { "--pidfile", proc.pidfile, "--explain" })
        assert.matches("config%s+yaml%s+" .. other:gsub("%p", "%%%0") .. "/homeserver%.yaml%s",
                       r.out)
        assert.is_nil(r.out:find(d .. "/conf.d", 1, true), r.out)
    end)

    it("sends as Synapse does: PUT to report_stats_endpoint, its Accept, success only with "
       .. "a JSON answer, a failed report dropped", function()
        local d = h.tmpdir()
        local ep = h.endpoint("200~")
        stop_later(ep.stop)
        local config = synapse.homeserver(d, synapse.sqlite_section(synapse.sqlite(d)),
            { extra = "report_stats_endpoint: " .. ep.url .. "/push" })
        local proc = synapse.process(config, d .. "/homeserver.pid")
        stop_later(proc.stop)
        local data = h.tmpdir()
        local r = h.run({ "run", "synapse", "--once", "--scripts", "scripts", "--data-dir", data,
                          "--pidfile", proc.pidfile, "--set", "synapse.config=" .. config },
                        nil, 60)
        local sent = ep.requests()
        assert.are.equal(1, #sent)
        assert.are.equal("/push", sent[1].path)
        assert.matches("accept: application/json\n", sent[1].headers)
        assert.matches("user%-agent: Synapse\n", sent[1].headers)
        -- a 200 that is not JSON is not a success to Synapse; and it never resends
        assert.are.equal(1, r.code)
        assert.matches('msg="endpoint answered without JSON"', r.err)
        assert.are.same({}, h.ls(data .. "/synapse/spool"))
    end)

    it("lists in docs every file, key, query and URL it reads", function()
        local r = h.run({ "docs", "synapse", "--scripts", "scripts" })
        assert.are.equal(0, r.code, r.err)
        for _, text in ipairs({ "/etc/matrix-synapse/homeserver.yaml", "server_name",
            "report_stats", "report_stats_endpoint", "server_context", "caches.global_factor",
            "event_cache_size", "database.name", "database.args", "log_config",
            "enable_metrics", "listeners", "/_synapse/metrics", "python_info",
            "FROM users", "appservice_id IS NULL", "creation_ts", "FROM rooms",
            "FROM user_ips", "last_seen", "FROM user_daily_visits", "received_ts",
            "m.room.encrypted", "m.room.message", "synapse%.app%.homeserver", "--pidfile" }) do
            h.has(text, r.out)
        end
    end)
end)
