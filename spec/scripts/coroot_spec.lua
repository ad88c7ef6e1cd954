-- Coroot's report read from Coroot itself, the way an operator runs phonehome beside it:
-- a data directory with instance.uuid and a db.sqlite made from Coroot's schema (or the
-- same rows on a real PostgreSQL), config.yaml, its web page on 127.0.0.1, and a process
-- named coroot standing for the server. Every figure is checked against the rows.
-- #integration
local fixture = require("fixtures.coroot.fixture")
local json = require("phonehome.json")
local h = require("support.helper")
local postgres = require("support.postgres")

local UUID = "6f1c2b9e-3d4a-4e5f-8a7b-9c0d1e2f3a4b"

-- What a test started, stopped after it (busted keeps only one `finally` per test).
local started = {}
local function defer(stop) started[#started + 1] = stop end
local SECRET = "xoxb-not-for-reports"

-- Rows with known figures, and the cases Coroot's collector treats in its own way: a
-- project without Prometheus settings (30 s), a category named "", a null integration,
-- a ClickHouse without an address, the last ClickHouse project deciding the flags, check
-- configs of an unparsable application id, with no configs or undecodable ones (their
-- project counts for nothing), notifications unsent or older than an hour, rollouts
-- older than an hour or beyond an application's last 100.
local function rows(now)
    local sql = { [[
INSERT INTO project (id, name, prometheus, settings) VALUES ('p1', 'production',
    '{"url":"http://prometheus:9090","refresh_interval":15,"extra_selector":""}',
    '{"application_categories":{"databases":["*/pg-*"],"auxiliary":["kube-system/*"]},
      "integrations":{"base_url":"","slack":{"token":"]] .. SECRET .. [[","default_channel":"ops",
      "incidents":true},"webhook":{"url":"http://hooks","incidents":true},
      "clickhouse":{"addr":"ch1:9000","traces_table":"otel_traces","logs_table":"",
      "profiling_disabled":false}}}');
INSERT INTO project (id, name, prometheus, settings) VALUES ('p2', 'staging', NULL,
    '{"application_categories":{"databases":["*/mysql-*"],"batch":["*/cron-*"],"":["x"]},
      "integrations":{"pagerduty":{"integration_key":"k","incidents":true},"teams":null,
      "clickhouse":{"addr":"ch2:9000","traces_table":"","logs_table":"otel_logs",
      "profiling_disabled":true}}}');
INSERT INTO project (id, name, prometheus, settings) VALUES ('p3', 'empty',
    '{"url":"","refresh_interval":0}', NULL);
INSERT INTO project (id, name, prometheus, settings) VALUES ('p4', 'lab',
    '{"url":"http://prometheus-lab:9090","refresh_interval":60}',
    '{"integrations":{"clickhouse":{"addr":"","traces_table":"t"},"opsgenie":{"api_key":"a"}}}');
INSERT INTO check_configs (project_id, application_id, configs) VALUES
    ('p1', '::', '{"CPUNode":{"threshold":80},"NetworkRTT":{"threshold":0.1}}'),
    ('p1', 'default:Deployment:api', '{"CPUNode":{"threshold":90},"SLOAvailability":{}}'),
    ('p1', 'bad-id', '{"MemoryOOM":{}}'),
    ('p1', 'default:Deployment:web', NULL),
    ('p2', '::', '{"CPUNode":{"threshold":70}}'),
    ('p2', 'shop:StatefulSet:db', '{"CPUNode":null}'),
    ('p3', 'ns:Deployment:x', '{"LogErrors":{}}'),
    ('p3', '::', 'not json');
]] }
    local function notify(dest, ts, sent)
        sql[#sql + 1] = string.format("INSERT INTO incident_notification (project_id, "
            .. "application_id, incident_key, status, destination, timestamp, sent_at) VALUES "
            .. "('p1', 'default:Deployment:api', 'k', 3, '%s', %d, %d);\n", dest, ts, sent)
    end
    for i = 1, 3 do notify("slack", now - 600 * i, now - 600 * i + 5) end
    notify("slack", now - 7200, now - 7190)     -- before the last hour
    notify("slack", now - 60, 0)                -- not sent
    notify("pagerduty", now - 300, now - 290)
    notify("pagerduty", now - 200, now - 190)
    notify("webhook", now - 3500, now - 3490)
    local function rollout(project, app, at)
        sql[#sql + 1] = string.format("INSERT INTO application_deployment (project_id, "
            .. "application_id, name, started_at) VALUES ('%s', '%s', 'r-%d', %d);\n",
            project, app, at, at)
    end
    rollout("p1", "default:Deployment:api", now - 1200)
    rollout("p1", "default:Deployment:api", now - 5000)     -- before the last hour
    rollout("p2", "shop:StatefulSet:db", now - 100)
    -- 101 rollouts of one application in the last hour: Coroot loads the last 100
    for i = 1, 101 do rollout("p1", "default:CronJob:batch", now - 3000 + 10 * i) end
    return table.concat(sql)
end

-- The report those rows make (Coroot's figures; the rest null), for comparison.
local function expected(database_type)
    local null = json.null
    return {
        instance = { uuid = UUID, version = "0.20.0", database_type = database_type },
        integration = {
            prometheus = true, prometheus_refresh_interval = 15, node_agent = null,
            node_agent_versions = null, kube_state_metrics = null,
            inspection_overrides = {
                CPUNode = { project_level = 2, application_level = 2 },
                NetworkRTT = { project_level = 1, application_level = 0 },
                SLOAvailability = { project_level = 0, application_level = 1 },
            },
            application_categories = 3,
            alerting_integrations = { "opsgenie", "pagerduty", "slack", "webhook" },
            cloud_costs = null, clickhouse = true, tracing = false, logs = true,
            profiles = false,
        },
        stack = { clouds = null, services = null, instrumented_services = null },
        infra = { projects = 4, nodes = null, applications = null, instances = null,
                  deployments = 102, deployment_summaries = null },
        ux = { world_load_time_avg = null, audit_time_avg = null, users_by_screen_size = null,
               users_by_theme = null, users = null, page_views = null,
               sent_notifications = { pagerduty = 2, slack = 3, webhook = 1 } },
        performance = { constructor = { stages = null, queries = null }, cpu_usage = null },
        profile = { cpu = null, memory = null },
    }
end

local function must(cmd)
    local out = h.sh(cmd .. " && echo ok")
    assert(out:match("ok$"), cmd .. ": " .. out)
end

-- A Coroot data directory: instance.uuid and, unless sqlite is false, db.sqlite with
-- Coroot's schema and the rows.
local function datadir(sqlite)
    local d = h.tmpdir()
    h.write(d .. "/instance.uuid", UUID)
    if sqlite ~= false then fixture.database(d .. "/db.sqlite", rows(os.time())) end
    return d
end

-- A process standing for the Coroot server: an executable named coroot that takes
-- Coroot's command line and environment (and nothing else) and waits. Its pid.
local function coroot(env, args)
    local program = h.pauser(h.tmpdir() .. "/coroot")
    local vars = {}
    for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. h.quote(v) end
    local pid = tonumber(h.sh("env -i " .. table.concat(vars, " ") .. " " .. program .. " "
        .. (args or "") .. " >/dev/null 2>&1 & echo $!"))
    defer(function() h.sh("kill " .. pid .. " 2>/dev/null") end)
    return pid
end

-- Ends a stand-in and waits until it is gone (a zombie has no command line), so that
-- the next one started is the only Coroot process.
local function stop(pid)
    must("kill " .. pid .. "; for i in $(seq 500); do [ -s /proc/" .. pid .. "/cmdline ] "
        .. "|| break; sleep 0.02; done; [ ! -s /proc/" .. pid .. "/cmdline ]")
end

-- Coroot's web page on 127.0.0.1 (spec/fixtures/coroot/index.html: version 0.20.0).
local function web()
    local ep = h.endpoint("serve:spec/fixtures/coroot")
    defer(ep.stop)
    return ep
end

local function show(args, env)
    local a = { "show", "coroot", "--data-dir", h.tmpdir() }
    for _, x in ipairs(args or {}) do a[#a + 1] = x end
    return h.run(a, env, 60)
end

local function rss(pid)
    return tonumber(h.sh("awk '/^VmRSS/ { print $2 }' /proc/" .. pid .. "/status")) * 1024
end

-- Checks a report against expected: the profile's window, then the rest as a whole (the
-- process's series are null: only a running daemon samples it).
local function check(r, want, t0, t1)
    assert.are.equal(0, r.code, r.err)
    local ours = json.decode(r.out)
    want.performance.memory_usage = json.null
    assert.is_true(t0 <= ours.profile.from and ours.profile.from <= ours.profile.to
        and ours.profile.to <= t1)
    want.profile.from, want.profile.to = ours.profile.from, ours.profile.to
    assert.are.same(want, ours)
    return ours
end

describe("coroot #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(function()
        for i = #started, 1, -1 do started[i]() end
        started = {}
        h.cleanup()
    end)

    it("reads every figure from Coroot's data directory, SQLite database, config.yaml, web "
       .. "page and process", function()
        local d = datadir()
        local ep = web()
        h.write(d .. "/config.yaml", "data_dir: /nonexistent\ndisable_usage_statistics: false\n")
        -- the environment wins over config.yaml, as in Coroot
        coroot({ DATA_DIR = d, LISTEN = "127.0.0.1:" .. ep.port,
                 CONFIG = d .. "/config.yaml" })
        local t0 = os.time()
        local r = show()
        check(r, expected("sqlite"), t0, os.time())
        assert.are.equal("", r.err)
        -- the page is asked for under the base path
        assert.are.equal("/index.html", ep.requests()[1].path)
        -- Coroot's database is read, never written
        local before = h.sh("sha256sum " .. d .. "/db.sqlite " .. d .. "/instance.uuid")
        show()
        assert.are.equal(before, h.sh("sha256sum " .. d .. "/db.sqlite " .. d
            .. "/instance.uuid"))
        -- no credential of an integration leaves the database
        r = show({ "--explain" })
        assert.are.equal(0, r.code, r.err)
        assert.is_nil(r.out:find(SECRET, 1, true))
    end)

    it("reads the same figures from Coroot's PostgreSQL, never showing its password",
       function()
        local pg = postgres.start()
        defer(pg.stop)
        pg.psql(h.slurp("spec/fixtures/coroot/schema.sql") .. rows(os.time()))
        -- instance.uuid only: no db.sqlite to fall back on
        local d = datadir(false)
        local ep = web()
        h.write(d .. "/config.yaml", "disable_usage_statistics: false\n")
        coroot({ DATA_DIR = d, LISTEN = "127.0.0.1:" .. ep.port,
                 PG_CONNECTION_STRING = pg.url, CONFIG = d .. "/config.yaml" })
        local t0 = os.time()
        local r = show()
        check(r, expected("postgres"), t0, os.time())
        assert.are.equal("", r.err)
        local explain = show({ "--explain" })
        assert.matches("db%s+sql%s+postgresql://phonehome_spec:%*%*%*@127%.0%.0%.1", explain.out)
        local docs = h.run({ "docs", "coroot" }).out
        for _, text in ipairs({ r.out, explain.out, explain.err, docs }) do
            assert.is_nil(text:find(pg.password, 1, true))
        end
    end)

    it("takes the data directory, database and address from config.yaml when the process "
       .. "gives none", function()
        local d = datadir()
        local ep = web()
        h.write(d .. "/config.yaml", string.format([[
listen_address: 127.0.0.1:%s
url_base_path: /coroot
data_dir: %s
]], ep.port, d))
        local pid = coroot({ CONFIG = d .. "/config.yaml" })
        local t0 = os.time()
        local r = show()
        local want = expected("sqlite")
        -- Coroot serves its page under /coroot/, which this server does not have
        want.instance.version = json.null
        check(r, want, t0, os.time())
        assert.are.equal("/coroot/index.html", ep.requests()[1].path)
        assert.matches("field 'instance.version': source 'ui' failed: .-HTTP 404", r.err)
        -- a PostgreSQL connection string in config.yaml: Coroot's database is there
        h.write(d .. "/config.yaml", "data_dir: " .. d .. "\npostgres:\n  connection_string: "
            .. "host=127.0.0.1 port=1 dbname=coroot user=coroot password=pg-secret-77\n")
        r = show()
        assert.are.equal(0, r.code, r.err)
        local ours = json.decode(r.out)
        assert.are.equal("postgres", ours.instance.database_type)
        assert.are.equal(json.null, ours.infra.projects)
        assert.matches("field 'infra.projects': source 'db' failed: .-127%.0%.0%.1", r.err)
        assert.is_nil((r.out .. r.err):find("pg-secret-77", 1, true))
        -- a data directory relative to Coroot's working directory, which is not known
        stop(pid)
        coroot({ DATA_DIR = "data" })
        r = show()
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(json.null, json.decode(r.out).infra.projects)
        assert.matches("source 'db' failed: option 'database': Coroot's data directory data is "
            .. "relative: set coroot.data_dir", r.err)
    end)

    it("takes Coroot's instance.uuid as it is, and its own id while Coroot's cannot be "
       .. "read", function()
        local d = datadir(false)
        local args = { "--set", "coroot.data_dir=" .. d }
        h.write(d .. "/instance.uuid", "  " .. UUID:upper() .. "\n")
        local r = show(args)
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(UUID:upper(), json.decode(r.out).instance.uuid)
        -- nothing names a config file: Coroot has none, and its switch is not read
        assert.matches("setting 'disable_usage_statistics': .-source 'config' failed: option "
            .. "'path': Coroot runs without a config file", r.err)
        assert.are.equal("  " .. UUID:upper() .. "\n", h.slurp(d .. "/instance.uuid"))
        for _, content in ipairs({ "not-a-uuid", "" }) do
            h.write(d .. "/instance.uuid", content)
            r = show(args)
            assert.are.equal(0, r.code, r.err)
            assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", json.decode(r.out).instance.uuid)
            assert.matches("the product's instance id could not be read %(.-instance.uuid does "
                .. "not hold a UUID%); phonehome's own is used", r.err)
            assert.are.equal(content, h.slurp(d .. "/instance.uuid"))
        end
        os.remove(d .. "/instance.uuid")
        r = show(args)
        assert.matches("the product's instance id could not be read %(.-instance.uuid: No such "
            .. "file", r.err)
    end)

    it("reads what its settings point at without a Coroot process; the process's figures "
       .. "are null", function()
        local d = datadir()
        local ep = web()
        h.write(d .. "/config.yaml", "disable_usage_statistics: false\n")
        local t0 = os.time()
        local r = show({ "--set", "coroot.data_dir=" .. d, "--set", "coroot.config=" .. d
            .. "/config.yaml", "--set", "coroot.url=" .. ep.url .. "/" })
        check(r, expected("sqlite"), t0, os.time())
    end)

    it("samples the process every minute and sends the window since the last report",
       function()
        local d = datadir()
        local ep = web()
        local pid = coroot({ DATA_DIR = d, LISTEN = "127.0.0.1:" .. ep.port })
        local sink = h.endpoint("201")
        defer(sink.stop)
        -- at a time scale of 600 a minute is 0.1 s and the hour between reports 6 s
        local p = h.spawn({ "run", "coroot", "--data-dir", h.tmpdir(), "--endpoint", sink.url,
                            "--time-scale", "600" })
        defer(function() h.sh("kill -9 " .. p.pid .. " 2>/dev/null") end)
        h.wait_until(function() return #sink.requests() >= 3 end, "three reports", 120)
        h.sh("kill -TERM " .. p.pid)
        assert.are.equal(0, h.exit_code(p))
        local size, first_window = rss(pid), true
        for i = 1, 3 do
            local perf = json.decode(sink.requests()[i].body).performance
            -- null when the window is empty (the report at start, unless reading the config
            -- took longer than the minute of 0.1 s)
            local mem = perf.memory_usage ~= json.null and perf.memory_usage or {}
            local cpu = perf.cpu_usage ~= json.null and perf.cpu_usage or {}
            assert.is_true(#mem >= 1 or i == 1, "no memory sample in report " .. i)
            for _, v in ipairs(mem) do assert.are.equal(size, v) end
            -- the stand-in waits without running: no CPU in any minute
            for _, v in ipairs(cpu) do assert.are.equal(0, v) end
            -- the process's first minute gives no CPU sample; after it, one each minute
            if #mem > 0 then
                assert.are.equal(#mem - (first_window and 1 or 0), #cpu, "report " .. i)
                first_window = false
            end
        end
    end)

    it("turns off as Coroot does: disable_usage_statistics in config.yaml, "
       .. "DISABLE_USAGE_STATISTICS in its environment", function()
        local d = datadir()
        local sink = h.endpoint("201")
        defer(sink.stop)
        local function run(env)
            local pid = coroot(env)
            local r = h.run({ "run", "coroot", "--once", "--data-dir", h.tmpdir(),
                              "--endpoint", sink.url }, nil, 60)
            stop(pid)
            assert.are.equal(0, r.code, r.err)
            return r.err
        end
        h.write(d .. "/config.yaml", "disable_usage_statistics: true\n")
        assert.matches('msg="not sending" reason="setting disable_usage_statistics',
                       run({ DATA_DIR = d, CONFIG = d .. "/config.yaml" }))
        assert.matches('msg="not sending" reason="DISABLE_USAGE_STATISTICS=true %(product '
            .. 'process %d+%)"', run({ DATA_DIR = d, DISABLE_USAGE_STATISTICS = "true" }))
        assert.are.equal(0, #sink.requests())
        h.write(d .. "/config.yaml", "disable_usage_statistics: false\n")
        assert.matches('msg="report sent"', run({ DATA_DIR = d, CONFIG = d .. "/config.yaml",
                                                  DISABLE_USAGE_STATISTICS = "false" }))
        assert.are.equal(1, #sink.requests())
        assert.are.equal(UUID, json.decode(sink.requests()[1].body).instance.uuid)
    end)

    it("reads Coroot's flags: --data-dir, --pg-connection-string, --listen, "
            .. "--config, --disable-usage-statistics", function()
        local d = datadir()
        local ep = web()
        h.write(d .. "/config.yaml", "data_dir: /nonexistent\n")
        -- flags win over the environment, as in Coroot
        local pid = coroot({ DATA_DIR = "/nonexistent" }, "--data-dir " .. d
            .. " --listen=127.0.0.1:" .. ep.port .. " --config " .. d .. "/config.yaml")
        local t0 = os.time()
        check(show(), expected("sqlite"), t0, os.time())
        stop(pid)
        local pg = postgres.start()
        defer(pg.stop)
        pg.psql(h.slurp("spec/fixtures/coroot/schema.sql") .. rows(os.time()))
        pid = coroot({}, "--data-dir " .. d .. " --listen 127.0.0.1:" .. ep.port
            .. " --pg-connection-string " .. h.quote(pg.url))
        t0 = os.time()
        check(show(), expected("postgres"), t0, os.time())
        stop(pid)
        coroot({ DATA_DIR = d }, "--disable-usage-statistics")
        local r = h.run({ "run", "coroot", "--once", "--data-dir", h.tmpdir(), "--endpoint",
                          "http://127.0.0.1:9" }, nil, 60)
        assert.matches('msg="not sending" reason="flag %-%-disable%-usage%-statistics', r.err)
    end)

    it("docs lists every query, file, key, variable and flag it reads", function()
        local r = h.run({ "docs", "coroot" })
        assert.are.equal(0, r.code, r.err)
        for _, text in ipairs({
            "SELECT id, name, prometheus, settings FROM project",
            "SELECT project_id, application_id, configs FROM check_configs",
            "SELECT destination, count(*) AS n FROM incident_notification WHERE timestamp >= "
                .. ":since AND sent_at > 0 GROUP BY destination",
            "FROM application_deployment", "rn <= 100 AND started_at >= :since",
            "### `config` (yaml)", "### `uuid` (file)", "### `db` (sql)", "### `ui` (http)",
            "<data-dir>/instance.uuid", "<data-dir>/db.sqlite", "config.yaml",
            "`disable_usage_statistics` in source `config`", "executable `coroot`",
            "reads its variable `DATA_DIR`", "reads its variable `PG_CONNECTION_STRING`",
            "reads its variable `CONFIG`", "reads its variable `LISTEN`",
            "reads its variable `URL_BASE_PATH`", "reads its flag `--data-dir`",
            "reads its flag `--pg-connection-string`", "reads its flag `--config`",
            "reads its flag `--listen`", "reads its flag `--url-base-path`",
            "environment variable `DISABLE_USAGE_STATISTICS`",
            "flag `--disable-usage-statistics`",
        }) do
            h.has(text, r.out)
        end
        -- what cannot be read from outside Coroot says so
        for _, field in ipairs({ "integration.node_agent", "stack.instrumented_services",
                                 "infra.nodes", "ux.users", "ux.world_load_time_avg",
                                 "performance.constructor.stages", "profile.cpu" }) do
            assert.matches("| `" .. field:gsub("%p", "%%%0") .. "` |[^\n]*null unless given",
                           r.out)
        end
    end)
end)
