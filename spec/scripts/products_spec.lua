-- Each bundled product's report against the public sample of its real telemetry
-- (spec/fixtures, taken from ../shared/reference): same keys, nesting, types and order.
local core = require("phonehome.core")
local definition = require("phonehome.definition")
local json = require("phonehome.json")
local sandbox = require("phonehome.sandbox")
local coroot = require("fixtures.coroot.fixture")
local h = require("support.helper")
local synapse = require("fixtures.synapse.fixture")

-- JSON kind of a decoded value; empty tables are both arrays and objects to cjson.
local function kind(v)
    if v == json.null then return "null" end
    if type(v) == "table" then
        if next(v) == nil then return "empty" end
        return v[1] ~= nil and "array" or "object"
    end
    return type(v)
end

-- Every difference of keys and kinds between ours and the sample, by path. Our null
-- may stand for a sample's scalar: the schema decides which fields may be null.
local function differences(ours, sample, path, out)
    local ko, ks = kind(ours), kind(sample)
    if ko == "null" and ks ~= "array" and ks ~= "object" then return out end
    if ko ~= ks and not (ko == "empty" and (ks == "array" or ks == "object"))
        and not (ks == "empty" and (ko == "array" or ko == "object")) then
        out[#out + 1] = path .. ": " .. ko .. " where the sample has " .. ks
        return out
    end
    if ks == "object" and ko == "object" then
        for k, v in pairs(sample) do
            if ours[k] == nil then out[#out + 1] = path .. "." .. k .. ": missing"
            else differences(ours[k], v, path .. "." .. k, out) end
        end
        for k in pairs(ours) do
            if sample[k] == nil then out[#out + 1] = path .. "." .. k .. ": not in the sample" end
        end
    elseif ks == "array" and ko == "array" then
        differences(ours[1], sample[1], path .. "[1]", out)
    end
    return out
end

-- The keys of a JSON text in the order they appear.
local function key_order(text)
    local keys = {}
    for k in text:gmatch('"([^"]+)"%s*:') do keys[#keys + 1] = k end
    return keys
end

local function show(name, config, extra)
    local dir = h.tmpdir()
    local args = { "show", name, "--data-dir", dir,
                   "--config", h.write(dir .. "/config.lua", config) }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    local r = h.run(args)
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    return r.out, assert(json.decode(r.out)), dir
end

local function fixture(name)
    return h.slurp("spec/fixtures/" .. name)
end

-- The problems the collector finds in the product's reference sample, parsed as it
-- parses a report (strict JSON) and checked against the product's definition.
local function conforms(name)
    local p = assert(sandbox.open("scripts/" .. name .. ".lua"))
    local def = p.def
    p:close()
    local value = assert(core.json_strict(fixture(name .. ".json"), json.null,
                                          getmetatable(json.array())))
    return definition.validate(def, value)
end

describe("eventstoredb", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    local node = require("fixtures.eventstoredb.node")
    local n
    after_each(function()
        if n then n.stop() end
        n = nil
        h.cleanup()
    end)
    local sample_text = fixture("eventstoredb.json")
    local sample = json.decode(sample_text)
    -- the node of the sample (spec/fixtures/eventstoredb) and phonehome's settings for it
    local function config(env)
        n = node.start({ env = env })
        return string.format("eventstoredb = { url = %q, password = %q }", n.url,
                             node.PASSWORD), { "--pid", tostring(n.pid) }
    end

    it("accepts the documented sample", function()
        assert.are.same({}, conforms("eventstoredb"))
    end)

    it("builds a report of the sample's shape, in its key order", function()
        local text, ours = show("eventstoredb", config())
        assert.are.same({}, differences(ours, sample, "", {}))
        assert.are.same(key_order(sample_text), key_order(text))
    end)

    it("takes values from the node, probes and .NET formats", function()
        local _, ours = show("eventstoredb", config())
        assert.are.equal(tonumber(h.sh("nproc --all")), ours.environment.coreCount)
        assert.are.equal(({ x86_64 = "X64", aarch64 = "Arm64" })[h.sh("uname -m")],
                         ours.environment.processorArchitecture)
        assert.matches("^%d%d:%d%d:%d%d", ours.uptime)
        assert.are.equal("Leader", ours.gossip["81e9ca2a-8acc-41ed-b9d0-65a652b36801"])
        assert.are.equal(ours.cluster.nodeId, ours.cluster.leaderId)
        assert.are.equal(5, ours.projections.totalCount)
        assert.are.equal(29, ours.database.epochNumber)
        assert.is_true(ours.environment.isContainer == false)
    end)

    it("says whether .NET's container variable is set in the node's environment", function()
        local _, ours = show("eventstoredb", config({ DOTNET_RUNNING_IN_CONTAINER = "true" }))
        assert.is_true(ours.environment.isContainer)
    end)

    it("keeps the database identity across runs and a fresh node id at each start of the node",
       function()
        local cfg, extra = config()
        local _, a = show("eventstoredb", cfg, extra)
        -- the node restarts: a new instance id in its gossip, the same database
        local answers = node.answers()
        answers.gossip.members[1].instanceId = "3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b"
        node.write_answers(n.root, { gossip = answers.gossip })
        local _, b = show("eventstoredb", cfg, extra)
        assert.are.equal(a.database.firstEpochId, b.database.firstEpochId)
        assert.are_not.equal(a.cluster.nodeId, b.cluster.nodeId)
    end)
end)

describe("coroot", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)
    -- the documented sample's key "instrumented_service" is a typo of the docs: Coroot's
    -- code sends "instrumented_services"
    local sample_text = fixture("coroot.json"):gsub('"instrumented_service"',
                                                    '"instrumented_services"')
    local sample = json.decode(sample_text)
    -- Coroot's data directory holding the sample's rows (spec/fixtures/coroot), its web
    -- page, and a process standing for the server: the figures Coroot reads from them
    -- come out where the sample has them; the others, which only Coroot's server knows,
    -- are given as settings
    local function product()
        local d = coroot.datadir(h.tmpdir(), sample.instance.uuid)
        local web = h.endpoint("serve:spec/fixtures/coroot")
        local pid = h.sh("sleep 600 >/dev/null 2>&1 & echo $!")
        finally(function()
            web.stop()
            h.sh("kill " .. pid)
        end)
        return string.format("coroot = { data_dir = %q, config = %q, url = %q,\n",
                             d, d .. "/config.yaml", web.url .. "/"), { "--pid", pid }
    end
    local config = [[
    ["integration.node_agent"] = true, ["integration.kube_state_metrics"] = true,
    ["integration.cloud_costs"] = true,
    ["stack.clouds"] = { "aws", "hetzner", "ovh" },
    ["stack.services"] = { "pgbouncer", "postgres", "redis" },
    ["stack.instrumented_services"] = { "postgres", "redis" },
    ["infra.applications"] = 18, ["infra.nodes"] = 10, ["infra.instances"] = 50,
    ["infra.deployment_summaries"] = { ["-CPU"] = 1, ["+Logs"] = 1, ["-Memory"] = 1 },
    ["ux.users_by_screen_size"] = { xs = 1, lg = 7, xl = 5 },
    ["ux.users"] = { "20174a56-4a1e-41ca-a90d-b657d1fa873e" },
    ["ux.page_views"] = { ["/p/$projectId"] = 1, ["/p/$projectId/app/$id/SLO"] = 3 },
    ["ux.world_load_time_avg"] = 0.053, ["ux.audit_time_avg"] = 0.011,
    ["performance.constructor.stages"] = { query = 0.022014374, load_rds = 0.000004882,
        load_nodes = 0.000139763, join_db_cluster = 0.000008697, load_containers = 0.017340304,
        enrich_instances = 0.002621411, load_k8s_metadata = 0.000543033 },
    ["performance.constructor.queries"] = {
        node_info = { failed = false, query_time = 0.012892758, metrics_count = 4 },
        container_net_latency = { failed = false, query_time = 0.015887205, metrics_count = 130 } },
    ["profile.cpu"] = "...", ["profile.memory"] = "...",
}]]

    it("accepts the documented sample", function()
        local p = assert(sandbox.open("scripts/coroot.lua"))
        local def = p.def
        p:close()
        local value = assert(core.json_strict(sample_text, json.null,
                                              getmetatable(json.array())))
        assert.are.same({}, definition.validate(def, value))
    end)

    it("builds a report of the sample's shape, in the key order of Coroot's code", function()
        local settings, extra = product()
        local text, ours = show("coroot", settings .. config, extra)
        -- what Coroot's code sends besides the sample's keys; `show` has no window of
        -- samples (only the running daemon samples the process)
        sample.integration.prometheus_refresh_interval = 30
        sample.integration.node_agent_versions = json.null
        sample.ux.users_by_theme = json.null
        sample.performance.cpu_usage = json.null
        sample.performance.memory_usage = json.null
        assert.are.same({}, differences(ours, sample, "", {}))
        assert.are.same({
            "instance", "uuid", "version", "database_type",
            "integration", "prometheus", "prometheus_refresh_interval", "node_agent",
            "node_agent_versions", "kube_state_metrics", "inspection_overrides", "CPUNode",
            "project_level", "application_level", "NetworkRTT", "project_level",
            "application_level", "application_categories", "alerting_integrations",
            "cloud_costs", "clickhouse", "tracing", "logs", "profiles",
            "stack", "clouds", "services", "instrumented_services",
            "infra", "projects", "nodes", "applications", "instances", "deployments",
            "deployment_summaries", "+Logs", "-CPU", "-Memory",
            "ux", "world_load_time_avg", "audit_time_avg", "users_by_screen_size", "lg", "xl",
            "xs", "users_by_theme", "users", "page_views", "/p/$projectId",
            "/p/$projectId/app/$id/SLO", "sent_notifications", "slack",
            "performance", "constructor", "stages", "enrich_instances", "join_db_cluster",
            "load_containers", "load_k8s_metadata", "load_nodes", "load_rds", "query",
            "queries", "container_net_latency", "metrics_count", "query_time", "failed",
            "node_info", "metrics_count", "query_time", "failed", "cpu_usage", "memory_usage",
            "profile", "from", "to", "cpu", "memory",
        }, key_order(text))
        assert.are.same(sample.instance, ours.instance)
        assert.are.same(sample.integration, ours.integration)
        assert.are.same(sample.infra, ours.infra)
        assert.are.same(sample.ux, ours.ux)
        assert.are.same(sample.performance.constructor, ours.performance.constructor)
    end)

    it("keeps its own id in instance.uuid while Coroot's cannot be read, replacing a "
       .. "corrupt one with a warning", function()
        local dir = h.tmpdir()
        local own = { "show", "coroot", "--data-dir", dir, "--set", "coroot.data_dir=" .. dir }
        local r = h.run(own)
        assert.are.equal(0, r.code)
        assert.matches("the product's instance id could not be read", r.err)
        local ours = json.decode(r.out)
        assert.are.equal(ours.instance.uuid, h.slurp(dir .. "/coroot/instance.uuid"))
        assert.are.equal("644", h.sh("stat -c %a " .. dir .. "/coroot/instance.uuid"))
        local again = json.decode(h.run(own).out)
        assert.are.equal(ours.instance.uuid, again.instance.uuid)
        h.write(dir .. "/coroot/instance.uuid", "not-a-uuid\n")
        r = h.run(own)
        assert.are.equal(0, r.code)
        assert.matches('level=warn product=coroot msg="instance id file does not hold a UUID',
            r.err)
        local new = json.decode(r.out).instance.uuid
        assert.are_not.equal(ours.instance.uuid, new)
        assert.are.equal(new, h.slurp(dir .. "/coroot/instance.uuid"))
    end)

    it("keeps its id in $STATE_DIRECTORY when no --data-dir is given", function()
        local dir = h.tmpdir()
        local r = h.run({ "show", "coroot", "--set", "coroot.data_dir=" .. dir },
                        { STATE_DIRECTORY = dir })
        assert.are.equal(0, r.code)
        assert.are.equal(json.decode(r.out).instance.uuid, h.slurp(dir .. "/coroot/instance.uuid"))
    end)
end)

describe("synapse", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    -- what a test started, stopped after it (busted keeps one finally)
    local started = {}
    after_each(function()
        for i = #started, 1, -1 do started[i]() end
        started = {}
        h.cleanup()
    end)

    -- a homeserver in Synapse's formats (spec/fixtures/synapse), its metrics listener on
    -- 127.0.0.1: the --set that points at its homeserver.yaml
    local function homeserver()
        local d = h.tmpdir()
        local metrics = synapse.metrics()
        started[#started + 1] = metrics.stop
        return "synapse.config=" .. synapse.homeserver(d,
            synapse.sqlite_section(synapse.sqlite(d)), { metrics_port = metrics.port }), d
    end

    it("sends exactly the documented statistics with their types, as canonical JSON", function()
        local config, d = homeserver()
        local proc = synapse.process(d .. "/homeserver.yaml", d .. "/homeserver.pid")
        started[#started + 1] = proc.stop
        local text, ours = show("synapse", "", { "--set", config, "--pidfile", proc.pidfile })
        local want = {}
        for line in fixture("synapse-fields.txt"):gmatch("[^\n]+") do
            local name, t = line:match("^(%S+) (%S+)$")
            want[name] = t
            assert.is_not_nil(ours[name], name)
            if t == "int" then
                assert.are.equal("integer", math.type(ours[name]), name)
            else
                assert.are.equal(t, type(ours[name]), name)
            end
        end
        for k in pairs(ours) do assert.is_not_nil(want[k], k) end
        local keys = key_order(text)
        local sorted = {}
        for i, k in ipairs(keys) do sorted[i] = k end
        table.sort(sorted)
        assert.are.same(sorted, keys)
        assert.is_nil(text:gsub("\n$", ""):find("%s"))
    end)

    it("measures the target process given by --pid", function()
        local ready = h.tmpdir() .. "/ready"
        local before = os.time()
        local pid = h.sh("lua5.4 -e 'local s = string.rep(\"y\", 64 * 1024 * 1024) "
            .. "io.open(\"" .. ready .. "\", \"w\"):write(\"1\"):close() "
            .. "os.execute(\"sleep 60\") return #s' >/dev/null 2>&1 & echo $!")
        h.wait_for(ready, "1", 60)
        local _, ours = show("synapse", "", { "--pid", pid, "--set", (homeserver()) })
        h.sh("kill " .. pid)
        assert.is_true(ours.memory_rss >= 60 * 1024, "memory_rss " .. ours.memory_rss)
        -- no older than the time since it was started, by the same clock
        assert.is_true(ours.uptime_seconds >= 0 and ours.uptime_seconds <= os.time() - before)
        assert.is_true(ours.timestamp >= before and ours.timestamp <= os.time())
    end)
end)

describe("electric", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)
    local sample = json.decode(fixture("electric.json"))

    it("accepts the documented sample", function()
        assert.are.same({}, conforms("electric"))
    end)

    it("builds a report of the sample's shape, in its envelope", function()
        -- no Electric runs here and nothing was pushed over StatsD: usage counters are 0
        -- and summaries Electric's empty one, in the sample's shape
        -- (spec/scripts/electric_spec.lua reads a running one). Its process's memory is
        -- null, unless another suite on this machine runs an Electric-like process: then
        -- it has the sample's shape, which differences() checks.
        local r = h.run({ "show", "electric", "--data-dir", h.tmpdir() })
        assert.are.equal(0, r.code, r.err)
        local ours = json.decode(r.out)
        local diffs = {}
        for _, d in ipairs(differences(ours, sample, "", {})) do
            if not d:find("^%.data%.resources%.used_memory: null") then diffs[#diffs + 1] = d end
        end
        table.sort(diffs)
        assert.are.same({}, diffs)
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z$", ours.timestamp)
        assert.are.equal(tonumber(h.sh("nproc --all")), ours.data.environment.cores)
    end)
end)

describe("mongooseim", function()
    setup(h.lock_bundled)
    teardown(h.unlock_bundled)
    after_each(h.cleanup)

    it("sends the GA4 shape with every documented event", function()
        -- a node's mongooseim.toml and its admin GraphQL API (spec/fixtures/mongooseim);
        -- external components are known to the node only: an operator's setting
        local api = h.endpoint("serve:spec/fixtures/mongooseim/api")
        finally(api.stop)
        local _, ours = show("mongooseim", string.format("mongooseim = { config = %q, "
            .. "graphql = %q, component_count = 0 }", "spec/fixtures/mongooseim/node.toml",
            api.url .. "/graphql"))
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", ours.client_id)
        local names = {}
        for _, e in ipairs(ours.events) do
            names[e.name] = true
            assert.is_true(#e.name <= 40)
        end
        assert.are.same({ host_count = true, domain_count = true, module_with_opt = true,
            custom_module_count = true, cluster = true, http_api = true, transport_mechanism = true,
            tls_option = true, outgoing_pool = true, xmpp_stanza_count = true }, names)
        local cluster
        for _, e in ipairs(ours.events) do if e.name == "cluster" then cluster = e.params end end
        assert.matches("^%d%d%d%d%-%d%d:%d%d:%d%d$", cluster.uptime)
        for _, k in ipairs({ "uptime", "version", "component", "node_number", "config_type" }) do
            assert.is_not_nil(cluster[k], k)
        end
        local by = {}
        for _, e in ipairs(ours.events) do
            by[e.name] = by[e.name] or {}
            table.insert(by[e.name], e.params)
        end
        assert.are.same({ { value = 1 } }, by.host_count)
        assert.are.same({ { mongoose_client_api = "enabled", mod_websockets = "enabled" } },
            by.http_api)
        assert.are.same({ { tcp = "enabled", mod_websockets = "enabled" } }, by.transport_mechanism)
        assert.are.same({ { mode = "starttls", module = "fast_tls" } }, by.tls_option)
        assert.are.same({ { value = "rdbms" } }, by.outgoing_pool)
        assert.are.same({ module = "mod_mam", backend = "rdbms" }, by.module_with_opt[1])
        -- every stanza counter, in MongooseIM's order; the first report counts all as new
        assert.are.equal(6, #by.xmpp_stanza_count)
        assert.are.same({ stanza_type = "xmppMessageSent", total = 12, increment = 12 },
            by.xmpp_stanza_count[1])
        assert.are.same({ stanza_type = "xmppIqReceived", total = 3, increment = 3 },
            by.xmpp_stanza_count[4])
    end)
end)
