-- MongooseIM's system metrics as the real binary builds them beside a node: a
-- mongooseim.toml in MongooseIM 6.2's format, its admin GraphQL API on 127.0.0.1 answering
-- in 6.2's shape, and the cluster id in a real PostgreSQL. Every event is checked against
-- what the fixtures hold. #integration
local json = require("phonehome.json")
local h = require("support.helper")
local mim = require("fixtures.mongooseim.fixture")
local postgres = require("support.postgres")

local CLUSTER_ID = "8a4c0e36-3c5e-4d5b-9f0e-2d1f7a6b9c01"
local GQL_PASSWORD = mim.GQL_PASSWORD

local replace, graphql_api, config = mim.replace, mim.graphql_api, mim.config

-- The RDBMS pool renamed: MongooseIM keeps its cluster id in Mnesia then, out of reach.
local function no_cluster_db(text)
    return (text:gsub("outgoing_pools%.rdbms%.default", "outgoing_pools.rdbms.archive"))
end

-- The cluster id where MongooseIM keeps it (priv/pg.sql's table).
local function cluster_db()
    local pg = postgres.start()
    pg.psql("CREATE TABLE mongoose_cluster_id (k varchar(50) PRIMARY KEY, v text);\n"
        .. "INSERT INTO mongoose_cluster_id (k, v) VALUES ('cluster_id', '" .. CLUSTER_ID .. "');")
    return pg
end

-- The GraphQL API and an endpoint answering status, both stopped after the test (busted
-- keeps one finally per test).
local function api_and_endpoint(status)
    local api, ep = graphql_api(), h.endpoint(status)
    finally(function()
        api.stop()
        ep.stop()
    end)
    return api, ep
end

local function show(path, more, data_dir)
    local args = { "show", "mongooseim", "--scripts", "scripts", "--data-dir",
                   data_dir or h.tmpdir(), "--set", "mongooseim.config=" .. path }
    for _, a in ipairs(more or {}) do args[#args + 1] = a end
    return h.run(args, nil, 60)
end

-- The modules every host type reports: those loaded anywhere that implement
-- mongoose_module_metrics, dependencies included (mod_event_pusher starts _http and _push,
-- mod_mam its pm, muc and rdbms modules, mod_blocking mod_privacy), sorted.
local MODULES = { "mod_adhoc", "mod_blocking", "mod_disco", "mod_event_pusher",
    "mod_event_pusher_http", "mod_event_pusher_push", "mod_last", "mod_mam",
    "mod_mam_cache_user", "mod_mam_muc_rdbms_arch", "mod_mam_pm", "mod_mam_rdbms_arch",
    "mod_muc", "mod_muc_light", "mod_offline", "mod_privacy", "mod_roster",
    "mod_stream_management", "mod_vcard" }
-- The options each host type's loaded modules report: backends as configured or by
-- default; mod_event_pusher the last of its backends; modules not loaded report none.
local GLOBAL = { mod_event_pusher = { backend = "push" },
                 mod_event_pusher_push = { backend = "rdbms" }, mod_mam = { backend = "rdbms" },
                 mod_muc = { backend = "mnesia", online_backend = "mnesia" },
                 mod_offline = { backend = "rdbms" }, mod_privacy = { backend = "mnesia" },
                 mod_roster = { backend = "rdbms" }, mod_vcard = { backend = "rdbms" } }
local HOST_TYPES = {
    { "localhost", GLOBAL },
    { "example.com", { mod_vcard = { backend = "ldap" } } },
    { "anonymous users", { mod_last = { backend = "mnesia" },
                           mod_muc_light = { backend = "rdbms" } } },
    { "premium", GLOBAL },
}

-- The report the fixtures make, increments given (else the totals: a first report).
local function expected(increments)
    local out = {}
    local function add(name, params) out[#out + 1] = { name = name, params = params } end
    add("host_count", { value = 4 })
    -- two static hosts, and the enabled domains of the two dynamic host types: 1 + 2
    add("domain_count", { value = 5 })
    for _, ht in ipairs(HOST_TYPES) do
        for _, m in ipairs(MODULES) do
            local params = { module = m }
            for k, v in pairs(ht[2][m] or {}) do params[k] = v end
            add("module_with_opt", params)
        end
    end
    -- mod_custom_greeter, and MongooseIM's own gen_mods without metrics that the
    -- configured ones start: mod_presence, mod_mam_rdbms_user, mod_mam_rdbms_prefs,
    -- mod_mam_rdbms_arch_async (pm only: muc's writer is off), mod_bind2, mod_sasl2,
    -- mod_muc_light_cache
    add("custom_module_count", { value = 8 })
    add("cluster", { uptime = "0001-02:03:04", version = "6.2.1-8-g1c3ad2a", node_number = 3,
                     config_type = "toml" })
    add("http_api", { mongoose_client_api = "enabled", mongoose_admin_api = "enabled",
                      mod_bosh = "enabled", mod_websockets = "enabled" })
    add("transport_mechanism", { mod_bosh = "enabled", mod_websockets = "enabled",
                                 tcp = "enabled" })
    -- sorted, then listed backwards (MongooseIM folds them into a list)
    add("tls_option", { mode = "tls", module = "just_tls" })
    add("tls_option", { mode = "starttls", module = "fast_tls" })
    for _, pool in ipairs({ "http", "rdbms", "redis" }) do
        add("outgoing_pool", { value = pool })
    end
    local totals = { xmppMessageSent = 12, xmppMessageReceived = 10, xmppIqSent = 9,
                     xmppIqReceived = 3, xmppPresenceSent = 2, xmppPresenceReceived = 8 }
    for _, s in ipairs({ "xmppMessageSent", "xmppMessageReceived", "xmppIqSent",
                         "xmppIqReceived", "xmppPresenceSent", "xmppPresenceReceived" }) do
        add("xmpp_stanza_count", { stanza_type = s, total = totals[s],
                                   increment = (increments or totals)[s] })
    end
    return out
end

describe("mongooseim #integration", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    it("reports every event from mongooseim.toml, the admin GraphQL API and the cluster id "
       .. "in PostgreSQL", function()
        local pg = cluster_db()
        local api = graphql_api()
        -- busted keeps one finally per test
        finally(function()
            pg.stop()
            api.stop()
        end)
        local r = show(config(api, pg))
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("", r.err)
        local out = json.decode(r.out)
        assert.are.equal(CLUSTER_ID, out.client_id)
        assert.are.same(expected(), out.events)
        -- the admin listener of the config: its address, its virtual host, its credentials
        local reqs = api.requests()
        assert.are.equal(2, #reqs)
        for _, q in ipairs(reqs) do
            assert.are.equal("/graphql", q.path)
            assert.matches("host: localhost:" .. api.port .. "\n", q.headers, 1, true)
        end
        local bodies = json.decode(reqs[1].body).query .. json.decode(reqs[2].body).query
        for _, s in ipairs({ "xmppMessageSent", "xmppPresenceReceived" }) do
            h.has('getMetricsAsDicts(name: ["_", "' .. s .. '"], keys: ["count"])', bodies)
        end
        h.has("server { status { version message } }", bodies)
        h.has("stat { globalStats { uptimeSeconds } }", bodies)
        h.has('getClusterMetricsAsDicts(name: ["global", "nodeUpTime"]', bodies)
        h.has('d1: domainsByHostType(hostType: "anonymous users") '
            .. 'd2: domainsByHostType(hostType: "premium")', bodies)
        -- the same with the URL given, credentials in it, a .cfg file name, and a
        -- component count only an operator can give
        local cfg = config(api, pg, nil, "mongooseim.cfg")
        r = show(cfg, { "--set", "mongooseim.graphql=http://admin:" .. GQL_PASSWORD
            .. "@127.0.0.1:" .. api.port .. "/graphql", "--set", "mongooseim.component_count=2" })
        assert.are.equal(0, r.code, r.err)
        local events = expected()
        events[#MODULES * 4 + 4].params.config_type = "cfg"
        events[#MODULES * 4 + 4].params.component = 2
        assert.are.same(events, json.decode(r.out).events)
        -- no credential in any output
        local texts = { r.out, r.err, show(cfg, { "--explain" }).out,
                        h.run({ "docs", "mongooseim", "--scripts", "scripts" }).out }
        for _, text in ipairs(texts) do
            assert.is_nil(text:find(GQL_PASSWORD, 1, true))
            assert.is_nil(text:find(pg.password, 1, true))
        end
    end)

    it("counts the stanzas since the last report delivered, and all of them after the "
       .. "node restarted", function()
        local api = graphql_api()
        finally(api.stop)
        local path = config(api, nil, no_cluster_db)
        local dd = h.tmpdir()
        h.sh("mkdir -p " .. dd .. "/mongooseim")
        -- what the daemon keeps of the last report delivered: when, and the totals it had
        local function delivered(ago, totals)
            h.write(dd .. "/mongooseim/state.json",
                    json.encode({ last_sent = os.time() - ago, marks = totals }))
        end
        local uptime = json.decode(h.slurp("spec/fixtures/mongooseim/api/graphql")).data.stat
            .globalStats.uptimeSeconds
        -- an hour ago on the same node; a counter above today's (never in one node's life)
        -- counts from zero
        delivered(3600, { xmppMessageSent = 10, xmppIqSent = 9, xmppPresenceReceived = 20 })
        local r = show(path, nil, dd)
        assert.are.equal(0, r.code, r.err)
        assert.are.same(expected({ xmppMessageSent = 2, xmppMessageReceived = 10,
                                   xmppIqSent = 0, xmppIqReceived = 3, xmppPresenceSent = 2,
                                   xmppPresenceReceived = 8 }), json.decode(r.out).events)
        assert.are.equal("", r.err)
        -- delivered longer ago than the node has been up: it restarted, every counter
        -- starts again
        delivered(uptime + 60, { xmppMessageSent = 10, xmppIqSent = 9 })
        r = show(path, nil, dd)
        assert.are.same(expected(), json.decode(r.out).events)
    end)

    it("reads the opt-out switch from mongooseim.toml before anything else", function()
        local api, ep = api_and_endpoint("200")
        local function run(path, dd)
            return h.run({ "run", "--once", "mongooseim", "--scripts", "scripts", "--data-dir",
                           dd or h.tmpdir(), "--endpoint", ep.url, "--set",
                           "mongooseim.config=" .. path }, nil, 60)
        end
        local r = run(config(api, nil, function(t)
            return replace(t, "report = true", "report = false") end))
        assert.are.equal(0, r.code, r.err)
        assert.matches('msg="not sending" reason="setting report=false"', r.err, 1, true)
        assert.are.equal(0, #api.requests())
        assert.are.equal(0, #ep.requests())
        -- on, with a MySQL pool: the cluster id is out of reach, phonehome's own id is sent
        local dd = h.tmpdir()
        r = run(config(api, nil, function(t)
            return replace(t, 'driver = "pgsql"', 'driver = "mysql"') end), dd)
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(2, #api.requests())
        -- 93 events: four requests of at most 25
        assert.are.equal(4, #ep.requests())
        assert.matches("the product's instance id could not be read %(.-the pool's driver is "
            .. "mysql; phonehome reads PostgreSQL %(pgsql%) only%)", r.err)
        local sent = json.decode(ep.requests()[1].body)
        assert.are.equal(h.slurp(dd .. "/mongooseim/instance.id"):match("%S+"), sent.client_id)
    end)

    it("times its reports and its notice by mongooseim.toml, as the node does", function()
        local api, ep = api_and_endpoint("200")
        -- The daemon on the config at path until it has scheduled its first report: what it
        -- logged, and the delay of that report bounded by clock readings around the start.
        local function first_report(path)
            local dd = h.tmpdir()
            local before = os.time()
            local p = h.spawn({ "run", "mongooseim", "--scripts", "scripts", "--data-dir", dd,
                                "--endpoint", ep.url, "--set", "mongooseim.config=" .. path })
            h.wait_for(p.err, 'msg="next report"', 60)
            local after = os.time()
            h.sh("kill -TERM " .. p.pid)
            assert.are.equal(0, h.exit_code(p))
            local due = json.decode(h.slurp(dd .. "/mongooseim/state.json")).next_due
            return h.slurp(p.err), due - after, due - before
        end
        -- the first report two hours after the start, the notice silenced (report = true)
        local err, low, high = first_report(config(api, nil, function(t)
            return replace(t, "initial_report = 300_000", "initial_report = 7_200_000")
        end))
        assert.is_true(high >= 7200 and low <= 7200 + 1, low .. " " .. high)
        assert.is_nil(err:find("MongooseIM collects anonymous", 1, true), err)
        -- report unset: the notice, and the default delay of five minutes
        err, low, high = first_report(config(api, nil, function(t)
            return replace(t, "initial_report = 300_000\n  periodic_report = 10_800_000\n"
                .. "  report = true", "periodic_report = 10_800_000")
        end))
        assert.is_true(high >= 300 and low <= 300 + 1, low .. " " .. high)
        assert.matches("MongooseIM collects anonymous", err, 1, true)
        assert.are.equal(0, #ep.requests())
    end)

    it("sends once, without a User-Agent, and drops a report that failed", function()
        local api, ep = api_and_endpoint("503")
        local dd = h.tmpdir()
        local r = h.run({ "run", "--once", "mongooseim", "--scripts", "scripts", "--data-dir",
                          dd, "--endpoint", ep.url, "--set", "mongooseim.config="
                              .. config(api, nil, no_cluster_db) }, nil, 60)
        assert.are.equal(1, r.code, r.err)  -- a report that failed
        -- httpc's request: no User-Agent, no retry, and no resend from disk
        assert.are.equal(1, #ep.requests())
        assert.is_nil(ep.requests()[1].headers:lower():find("user-agent", 1, true))
        assert.matches('msg="report dropped: the product does not resend"', r.err, 1, true)
        assert.are.same({}, h.ls(dd .. "/mongooseim/spool"))
    end)

    it("fails the report, with the reason, when the GraphQL API refuses or answers errors",
       function()
        local api = graphql_api()
        local path = config(api, nil, no_cluster_db)
        local r = show(path, { "--set", "mongooseim.graphql=http://admin:wrong-pw-7@127.0.0.1:"
            .. api.port .. "/graphql" })
        assert.are.equal(1, r.code)
        assert.matches("field 'events': source 'graphql' failed: .-HTTP 401", r.err)
        assert.is_nil(r.err:find("wrong-pw-7", 1, true))
        local root = h.tmpdir()
        h.write(root .. "/graphql", '{"data": {"server": null, "stat": null, "metric": null, '
            .. '"domain": {"d1": [], "d2": []}}, "errors": [{"message": "Authorization error"}]}')
        local broken = h.endpoint("serve:" .. root)
        -- busted keeps one finally per test
        finally(function()
            api.stop()
            broken.stop()
        end)
        r = show(path, { "--set", "mongooseim.graphql=" .. broken.url .. "/graphql" })
        assert.are.equal(1, r.code)
        assert.matches("field 'events': GraphQL answer has no server.status: Authorization "
            .. "error", r.err)
    end)

    it("lists in docs every source, query and key it reads", function()
        local r = h.run({ "docs", "mongooseim", "--scripts", "scripts" })
        assert.are.equal(0, r.code, r.err)
        for _, text in ipairs({ "### `config` (toml)", "### `graphql` (http)",
                                "### `domains` (http)", "### `db` (sql)",
                                "SELECT v FROM mongoose_cluster_id WHERE k = 'cluster_id'",
                                "getMetricsAsDicts", "uptimeSeconds",
                                "/usr/lib/mongooseim/etc/mongooseim.toml",
                                "general.hosts", "[[listen.c2s]]", "outgoing_pools" }) do
            h.has(text, r.out)
        end
        for _, key in ipairs({ "report", "initial_report", "periodic_report", "tracking_id.id",
                               "tracking_id.secret" }) do
            h.has("Read from `services.service_mongoose_system_metrics." .. key
                .. "` in source `config`", r.out)
        end
    end)
end)
