-- MongooseIM 6.2 system metrics: the Google Analytics 4 events its
-- service_mongoose_system_metrics sends, worked out as it does from mongooseim.toml, the
-- node's admin GraphQL API and the cluster id in its RDBMS.
local F = require("phonehome.fields")

local SERVICE = "services.service_mongoose_system_metrics."

local function set(list)
    local t = {}
    for _, v in ipairs(list) do t[v] = true end
    return t
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(type(t) == "table" and t or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
end

local function list(v) return type(v) == "table" and v or {} end

-- The modules of MongooseIM 6.2 that implement mongoose_module_metrics: reported by name.
-- Every other loaded module that is a gen_mod counts as custom, MongooseIM's own
-- dependencies such as mod_presence or mod_mam_rdbms_user included (as MongooseIM does).
local REPORTED = set({
    "mod_adhoc", "mod_amp", "mod_auth_token", "mod_blocking", "mod_bosh", "mod_caps",
    "mod_carboncopy", "mod_csi", "mod_disco", "mod_event_pusher", "mod_event_pusher_http",
    "mod_event_pusher_push", "mod_event_pusher_rabbit", "mod_global_distrib",
    "mod_global_distrib_bounce", "mod_global_distrib_disco",
    "mod_global_distrib_hosts_refresher", "mod_global_distrib_mapping",
    "mod_global_distrib_receiver", "mod_global_distrib_sender", "mod_http_upload", "mod_inbox",
    "mod_jingle_sip", "mod_keystore", "mod_last", "mod_mam", "mod_mam_cache_user",
    "mod_mam_cassandra_arch", "mod_mam_elasticsearch_arch", "mod_mam_muc_rdbms_arch",
    "mod_mam_pm", "mod_mam_rdbms_arch", "mod_muc", "mod_muc_light", "mod_muc_log",
    "mod_offline", "mod_offline_chatmarkers", "mod_offline_stub", "mod_privacy", "mod_private",
    "mod_pubsub", "mod_push_service_mongoosepush", "mod_register", "mod_roster", "mod_sic",
    "mod_stream_management", "mod_time", "mod_vcard", "mod_version",
})
-- Started by mod_mam but not a gen_mod: neither reported nor counted.
local NEITHER = set({ "mod_mam_muc" })

-- The options each module's config_metrics/1 reports, with their defaults in 6.2.
local REPORTED_OPTS = {
    mod_auth_token = { backend = "rdbms" }, mod_bosh = { backend = "mnesia" },
    mod_event_pusher_push = { backend = "mnesia" }, mod_http_upload = { backend = "s3" },
    mod_inbox = { backend = "rdbms" }, mod_last = { backend = "mnesia" },
    mod_mam = { backend = "rdbms" }, mod_muc = { backend = "mnesia", online_backend = "mnesia" },
    mod_muc_light = { backend = "mnesia" }, mod_offline = { backend = "mnesia" },
    mod_privacy = { backend = "mnesia" }, mod_private = { backend = "rdbms" },
    mod_pubsub = { backend = "mnesia" }, mod_push_service_mongoosepush = { api_version = "v3" },
    mod_roster = { backend = "mnesia" }, mod_vcard = { backend = "mnesia" },
}
-- The defaults applied to a configured module: mod_blocking passes its own (mod_privacy's
-- options) on to mod_privacy.
local DEFAULTS = setmetatable({ mod_blocking = { backend = "mnesia" } },
                              { __index = REPORTED_OPTS })

local function with_defaults(name, opts)
    local out = {}
    for k, v in pairs(list(opts)) do out[k] = v end
    for k, v in pairs(DEFAULTS[name] or {}) do if out[k] == nil then out[k] = v end end
    return out
end

-- The modules mod_mam starts for its pm and muc sections (mod_mam:deps/2).
local function mam_deps(opts)
    local deps = {}
    local function add(name) deps[#deps + 1] = { name, {} } end
    for _, kind in ipairs({ "pm", "muc" }) do
        if type(opts[kind]) == "table" then
            local full = {}
            for k, v in pairs(opts) do if k ~= "pm" and k ~= "muc" then full[k] = v end end
            for k, v in pairs(opts[kind]) do full[k] = v end
            local backend, muc = full.backend or "rdbms", kind == "muc" and "muc_" or ""
            add(kind == "pm" and "mod_mam_pm" or "mod_mam_muc")
            if full.user_prefs_store then add("mod_mam_" .. full.user_prefs_store .. "_prefs") end
            if backend == "rdbms" then
                add("mod_mam_" .. muc .. "rdbms_arch")
                add("mod_mam_rdbms_user")
                if full.cache_users ~= false then
                    if list(full.cache).module == "mod_cache_users" then add("mod_cache_users") end
                    add("mod_mam_cache_user")
                end
                if list(full.async_writer).enabled ~= false then
                    add("mod_mam_" .. muc .. "rdbms_arch_async")
                end
            else
                add("mod_mam_" .. muc .. backend .. "_arch")
            end
        end
    end
    return deps
end

local GD = "mod_global_distrib_"
local function gd(...)
    local names = { ... }
    return function(opts)
        local deps = {}
        for i, n in ipairs(names) do deps[i] = { GD .. n, opts } end
        return deps
    end
end

-- The dependencies each module starts (its deps/2 in 6.2); mod_caps, an optional
-- dependency of mod_pubsub, changes nothing reported.
local DEPS = {
    mod_mam = mam_deps,
    mod_event_pusher = function(opts)
        local deps = {}
        for _, b in ipairs(sorted_keys(opts)) do
            local name = "mod_event_pusher_" .. b
            deps[#deps + 1] = { name, with_defaults(name, opts[b]) }
        end
        return deps
    end,
    mod_global_distrib = function(opts, host_type)
        if opts.global_host ~= host_type then return {} end
        local names = { "utils", "mapping", "disco", "receiver", "hosts_refresher" }
        if list(opts.bounce).enabled ~= false then names[#names + 1] = "bounce" end
        return gd(table.unpack(names))(opts)
    end,
    mod_global_distrib_bounce = gd("utils"), mod_global_distrib_disco = gd("utils"),
    mod_global_distrib_receiver = gd("utils"),
    mod_global_distrib_hosts_refresher = gd("utils", "mapping"),
    mod_global_distrib_mapping = gd("utils", "receiver"),
    mod_bind2 = function(opts) return { { "mod_sasl2", opts } } end,
    mod_muc_light = function(opts)
        return opts.cache_affs and { { "mod_muc_light_cache", opts.cache_affs } } or {}
    end,
    mod_blocking = function(opts) return { { "mod_privacy", opts } } end,
    mod_privacy = function() return { { "mod_presence", {} } } end,
}

local function same(a, b)
    if type(a) ~= "table" or type(b) ~= "table" then return a == b end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
end

-- The modules loaded on a host type with their options, dependencies included
-- (gen_mod_deps:resolve_deps/2): host_config's modules replace the global ones.
local function loaded_modules(config, host_type)
    local mods = config.modules
    for _, hc in ipairs(list(config.host_config)) do
        if type(hc) == "table" and (hc.host_type == host_type or hc.host == host_type)
            and hc.modules ~= nil then
            mods = hc.modules
        end
    end
    local queue, known = {}, {}
    for _, name in ipairs(sorted_keys(mods)) do
        queue[#queue + 1] = { name, with_defaults(name, mods[name]) }
    end
    for _ = 1, 10000 do
        local item = table.remove(queue, 1)
        if not item then break end
        local name, opts = item[1], item[2]
        if known[name] then
            local merged = {}
            for k, v in pairs(known[name]) do merged[k] = v end
            for k, v in pairs(opts) do merged[k] = v end
            opts = not same(merged, known[name]) and merged or nil
        end
        if opts then
            known[name] = opts
            local deps = DEPS[name] and DEPS[name](opts, host_type) or {}
            for i = #deps, 1, -1 do table.insert(queue, 1, deps[i]) end
        end
    end
    return known
end

-- What config_metrics/1 of a module gives on a host type (opts: nil where not loaded).
local function module_params(name, opts)
    local params = { module = name }
    if not opts then return params end
    if name == "mod_event_pusher" then
        local backends = sorted_keys(opts)
        params.backend = backends[#backends]  -- each one in turn, the last one kept
        return params
    end
    for key in pairs(REPORTED_OPTS[name] or {}) do
        -- one missing option and MongooseIM reports the module alone
        if opts[key] == nil then return { module = name } end
        params[key] = opts[key]
    end
    return params
end

local function host_types(config)
    local general, out = list(config.general), {}
    for _, h in ipairs(list(general.hosts)) do out[#out + 1] = h end
    for _, h in ipairs(list(general.host_types)) do out[#out + 1] = h end
    return out, #list(general.hosts)
end

-- The host types whose domains live in the domain database (service_domain_db).
local function dynamic_host_types(config)
    if list(config.services).service_domain_db == nil then return {} end
    return list(list(config.general).host_types)
end

-- The [[listen.http]] listener and handler that serve the admin GraphQL schema.
local function admin_graphql(config)
    for _, l in ipairs(list(list(config.listen).http)) do
        for _, hd in ipairs(list(list(l.handlers).mongoose_graphql_handler)) do
            if hd.schema_endpoint == "admin" then return l, hd end
        end
    end
end

-- The admin GraphQL URL, headers and credentials: the setting graphql (credentials in its
-- URL, else the admin handler's), else the admin listener of mongooseim.toml.
local function graphql_target(ctx)
    local given = ctx.settings.graphql
    if given and given:match("^%a[%w+.-]*://[^/]*@") then return { url = given, headers = {} } end
    local l, hd = admin_graphql(ctx.sources.config)
    local auth = hd and hd.username and hd.password
        and { basic = { user = hd.username, password = hd.password } } or nil
    if given then return { url = given, auth = auth, headers = {} } end
    if not l then
        error("mongooseim.toml has no [[listen.http]] with a mongoose_graphql_handler of "
            .. "schema_endpoint \"admin\"; set mongooseim.graphql", 0)
    end
    local ip = l.ip_address
    if ip == nil or ip == "0" or ip == "0.0.0.0" then ip = "127.0.0.1"
    elseif ip == "::" then ip = "[::1]"
    elseif ip:find(":", 1, true) then ip = "[" .. ip .. "]" end
    local headers = {}
    if hd.host and hd.host ~= "_" then
        headers[1] = "Host: " .. hd.host .. ":" .. tostring(l.port)
    end
    return { url = (l.tls and "https" or "http") .. "://" .. ip .. ":" .. tostring(l.port)
                 .. tostring(hd.path or "/api/graphql"), headers = headers, auth = auth }
end

-- The global RDBMS pool named default: where MongooseIM keeps its cluster id.
local function rdbms_pool(config)
    local pool = list(list(config.outgoing_pools).rdbms).default
    if type(pool) ~= "table" or (pool.scope or "global") ~= "global" then return nil end
    return pool
end

local STANZAS = { "xmppMessageSent", "xmppMessageReceived", "xmppIqSent", "xmppIqReceived",
                  "xmppPresenceSent", "xmppPresenceReceived" }

-- The node's version, uptime, cluster size and stanza counters, as the service reads them
-- on the node: one admin GraphQL query.
local QUERY = { "query { server { status { version message } } "
    .. "stat { globalStats { uptimeSeconds } } metric { "
    .. 'nodes: getClusterMetricsAsDicts(name: ["global", "nodeUpTime"], keys: ["value"]) '
    .. "{ node }" }
for _, s in ipairs(STANZAS) do
    QUERY[#QUERY + 1] = string.format(' %s: getMetricsAsDicts(name: ["_", "%s"], '
        .. 'keys: ["count"]) { name dict { key value } }', s, s)
end
QUERY = table.concat(QUERY) .. " } }"

-- The data of a GraphQL answer at a path, or an error with the server's first message.
local function gql(answer, ...)
    local v = list(answer).data
    for _, k in ipairs({ ... }) do v = type(v) == "table" and v[k] or nil end
    if v == nil then
        local e = list(list(answer).errors)[1]
        error("GraphQL answer has no " .. table.concat({ ... }, ".")
            .. (e and (": " .. tostring(list(e).message)) or ""), 0)
    end
    return v
end

local function count(t)
    local n = 0
    for i in pairs(list(t)) do if math.type(i) == "integer" and i > n then n = i end end
    return n
end

local function enabled(names)
    local params = {}
    for _, name in ipairs(names) do params[name] = "enabled" end
    return params
end

-- host_count, domain_count, module_with_opt per host type and module, custom_module_count.
local function host_and_module_events(ctx, config, add)
    local types, domains = host_types(config)
    add("host_count", { value = #types })
    for i in ipairs(dynamic_host_types(config)) do
        domains = domains + count(gql(ctx.sources.domains, "domain", "d" .. i))
    end
    add("domain_count", { value = domains })
    local loaded, all = {}, {}
    for i, ht in ipairs(types) do
        loaded[i] = loaded_modules(config, ht)
        for name in pairs(loaded[i]) do all[name] = true end
    end
    local reported, custom = {}, 0
    for _, name in ipairs(sorted_keys(all)) do
        if REPORTED[name] then reported[#reported + 1] = name
        elseif not NEITHER[name] then custom = custom + 1 end
    end
    for i in ipairs(types) do
        for _, name in ipairs(reported) do
            add("module_with_opt", module_params(name, loaded[i][name]))
        end
    end
    add("custom_module_count", { value = custom })
end

-- http_api, transport_mechanism, tls_option per c2s TLS setup, outgoing_pool per pool.
local function listener_events(config, add)
    local handlers, tcp, tls = {}, false, {}
    for _, l in ipairs(list(list(config.listen).http)) do
        for name, hs in pairs(list(l.handlers)) do
            if #list(hs) > 0 then handlers[name] = true end
        end
    end
    for _, l in ipairs(list(list(config.listen).c2s)) do
        if (l.proto or "tcp") == "tcp" then tcp = true end
        if type(l.tls) == "table" then
            tls[(l.tls.mode or "starttls") .. " " .. (l.tls.module or "fast_tls")] = true
        end
    end
    local apis, transports = {}, {}
    for _, name in ipairs({ "mongoose_client_api", "mongoose_admin_api", "mod_bosh",
                            "mod_websockets" }) do
        if handlers[name] then apis[#apis + 1] = name end
        if handlers[name] and name:match("^mod_") then transports[#transports + 1] = name end
    end
    if tcp then transports[#transports + 1] = "tcp" end
    add("http_api", enabled(apis))
    add("transport_mechanism", enabled(transports))
    -- sorted, then folded into a list: backwards
    local setups = sorted_keys(tls)
    for i = #setups, 1, -1 do
        local mode, module = setups[i]:match("^(%S+) (%S+)$")
        add("tls_option", { mode = mode, module = module })
    end
    local pools = list(config.outgoing_pools)
    for _, ptype in ipairs(sorted_keys(pools)) do
        for _ in ipairs(sorted_keys(pools[ptype])) do add("outgoing_pool", { value = ptype }) end
    end
end

-- The events, in the order mongoose_system_metrics_collector:collect/1 makes them.
local function events(ctx)
    local config, answer = ctx.sources.config, ctx.sources.graphql
    local out = {}
    local function add(name, params) out[#out + 1] = { name = name, params = params } end
    host_and_module_events(ctx, config, add)
    local status = gql(answer, "server", "status")
    local uptime = gql(answer, "stat", "globalStats", "uptimeSeconds")
    local path = ctx.settings.config
    add("cluster", {
        uptime = string.format("%04d-%02d:%02d:%02d", uptime // 86400, uptime % 86400 // 3600,
                               uptime % 3600 // 60, uptime % 60),
        -- the release's full version (6.2.1-8-g1c3ad2a) is only in the message
        version = tostring(status.message):match("MongooseIM (%S+) is running")
            or gql(answer, "server", "status", "version"),
        component = ctx.settings.component_count,
        node_number = count(gql(answer, "metric", "nodes")),
        config_type = path:match("%.toml$") and "toml" or path:match("%.cfg$") and "cfg"
            or "unknown_config_type",
    })
    listener_events(config, add)
    -- MongooseIM keeps its counters in memory: a node up for less time than has passed
    -- since the last report delivered restarted since, and all it counted is new
    local restarted = ctx.last_sent ~= nil and uptime < ctx.now - ctx.last_sent
    for _, stanza in ipairs(STANZAS) do
        local total = 0
        for _, m in ipairs(list(gql(answer, "metric", stanza))) do
            for _, kv in ipairs(list(list(m).dict)) do
                if kv.key == "count" then total = total + kv.value end
            end
        end
        add("xmpp_stanza_count", { stanza_type = stanza, total = total,
                                   increment = ctx.increase(stanza, total, restarted) })
    end
    return out
end

return {
    name = "mongooseim",
    version = "2.0.0",
    description = "System metrics of a MongooseIM 6.2 node, sent as Google Analytics 4 events "
        .. "as its service_mongoose_system_metrics sends them: hosts, domains, modules and "
        .. "their backends, APIs, listeners, pools, version, uptime, cluster size, stanza "
        .. "counts. Read from mongooseim.toml, the node's admin GraphQL API and the cluster id "
        .. "in its PostgreSQL database.",
    endpoint = "https://www.google-analytics.com/mp/collect",
    method = "POST",
    format = "ga4",
    -- httpc sends no User-Agent, tries once and forgets a report that failed
    delivery = { retries = 0, drop_failed = true, user_agent = "" },
    identity = {
        field = "client_id", sources = { "config", "db" },
        value = function(ctx)
            -- without an RDBMS pool the id lives in Mnesia or CETS: phonehome keeps its own
            -- (and without a config there is no report, nor anything to warn about)
            local ok, config = pcall(function() return ctx.sources.config end)
            if not ok or not rdbms_pool(config) then return ctx.instance_id end
            return ctx.sources.db.cluster_id[1].v
        end,
    },
    last_report = "system_metrics_report.json",
    schedule = { first = { setting = "initial_report" }, interval = { setting = "periodic_report" },
                 anchor = "previous" },
    optout = {
        default = "on",
        settings = { { name = "report", on = { true }, off = { false } } },
    },
    disclosure = {
        on = "MongooseIM collects anonymous system metrics (version, uptime, cluster size, "
            .. "modules in use) and sends them to Google Analytics; the last report is kept in "
            .. "system_metrics_report.json. Set report = false in "
            .. "[services.service_mongoose_system_metrics] to stop.",
        off = "MongooseIM system metrics are disabled (report = false): nothing is sent.",
        quiet_when = { report = true },
    },
    sources = {
        { name = "config", kind = "toml",
          description = "mongooseim.toml, as the node reads it: general.hosts and "
              .. "general.host_types, modules and host_config[].modules (with their backend "
              .. "options), [[listen.http]] handlers and the admin GraphQL listener, "
              .. "[[listen.c2s]] proto and tls.mode / tls.module, outgoing_pools, "
              .. "services.service_domain_db and services.service_mongoose_system_metrics.",
          path = function(ctx) return ctx.settings.config end },
        { name = "graphql", kind = "http", method = "POST",
          description = "The node's admin GraphQL API (the setting graphql, else the admin "
              .. "listener of mongooseim.toml with its credentials): version, uptime, the "
              .. "nodes of the cluster and the exometer stanza counters of every host type.",
          url = function(ctx) return graphql_target(ctx).url end,
          headers = function(ctx) return graphql_target(ctx).headers end,
          auth = function(ctx) return graphql_target(ctx).auth end,
          body = { query = QUERY } },
        { name = "domains", kind = "http", method = "POST",
          description = "The same API: the enabled domains of each host type "
              .. "(domainsByHostType), read only when service_domain_db serves dynamic domains.",
          url = function(ctx)
              if #dynamic_host_types(ctx.sources.config) == 0 then
                  error("not read: no host_types served by service_domain_db", 0)
              end
              return graphql_target(ctx).url
          end,
          headers = function(ctx) return graphql_target(ctx).headers end,
          auth = function(ctx) return graphql_target(ctx).auth end,
          body = function(ctx)
              local parts = {}
              for i, ht in ipairs(dynamic_host_types(ctx.sources.config)) do
                  parts[i] = string.format('d%d: domainsByHostType(hostType: "%s")', i,
                      tostring(ht):gsub('[\\"]', "\\%0"))
              end
              return { query = "query { domain { " .. table.concat(parts, " ") .. " } }" }
          end },
        { name = "db", kind = "sql",
          description = "The cluster id, kept in the database of the global RDBMS pool "
              .. "named default (outgoing_pools.rdbms.default.connection: host, port, "
              .. "database, username, password, tls) when its driver is pgsql; MySQL and ODBC "
              .. "pools are not read.",
          database = function(ctx)
              local pool = rdbms_pool(ctx.sources.config)
              if not pool then error("no global RDBMS pool named default", 0) end
              local c = list(pool.connection)
              if c.driver ~= "pgsql" then
                  error("the pool's driver is " .. tostring(c.driver) .. "; phonehome reads "
                      .. "PostgreSQL (pgsql) only", 0)
              end
              return { host = c.host, port = tostring(c.port or 5432), dbname = c.database,
                       user = c.username, password = c.password,
                       sslmode = type(c.tls) ~= "table" and "disable"
                           or c.tls.required and "require" or "prefer" }
          end,
          queries = { cluster_id = "SELECT v FROM mongoose_cluster_id WHERE k = 'cluster_id'" } },
    },
    settings = {
        { name = "config", type = "string", default = "/usr/lib/mongooseim/etc/mongooseim.toml",
          description = "Path of the node's mongooseim.toml." },
        { name = "graphql", type = "string",
          description = "URL of the node's admin GraphQL API, credentials in it "
              .. "(http://admin:secret@127.0.0.1:5551/api/graphql); unset, the admin "
              .. "listener of mongooseim.toml and its username and password are used." },
        { name = "report", type = "bool", source = "config", key = SERVICE .. "report",
          description = "false: nothing runs; true: reports without the start-up notice; "
              .. "unset: reports and logs the notice." },
        { name = "initial_report", type = "int", default = 300000, source = "config",
          key = SERVICE .. "initial_report",
          description = "Delay of the first report after start, in milliseconds: "
              .. "mongooseim.toml's, read when the daemon starts the product (--set and "
              .. "--config win over it)." },
        { name = "periodic_report", type = "int", default = 10800000, source = "config",
          key = SERVICE .. "periodic_report",
          description = "Time between reports, in milliseconds, counted from the start of "
              .. "the last one: mongooseim.toml's as each report reads it." },
        { name = "tracking_id.id", type = "string", source = "config",
          key = SERVICE .. "tracking_id.id",
          description = "The operator's GA4 measurement id (G-XXXX): the reports go there. "
              .. "MongooseIM also sends each to its own property, whose secret phonehome "
              .. "does not carry." },
        { name = "tracking_id.secret", type = "string", source = "config",
          key = SERVICE .. "tracking_id.secret",
          description = "The API secret of that measurement id." },
        { name = "component_count", type = "int",
          description = "Connected external XMPP components: only the node's memory knows "
              .. "them (no API gives them), so the cluster event carries component only "
              .. "when this is set." },
    },
    fields = {
        F.instance_id("client_id", "The cluster id: the v column of mongoose_cluster_id in "
            .. "the node's PostgreSQL database; phonehome's own random id where MongooseIM "
            .. "keeps it in Mnesia or CETS (no RDBMS pool, or not PostgreSQL)."),
        F.value("events", "array",
                "The metrics, one GA4 event each (sent at most 25 to a request): host_count "
                .. "(hosts and host types), domain_count (static hosts and the enabled dynamic "
                .. "domains), one module_with_opt per host type and reported module (its "
                .. "backend where MongooseIM reports one; dependencies the modules start "
                .. "included), custom_module_count (other loaded modules), cluster (uptime "
                .. "DDDD-HH:MM:SS, version, component from the setting component_count only, "
                .. "node_number, config_type from the file's extension), http_api, "
                .. "transport_mechanism, one tls_option per c2s TLS mode and module, one "
                .. "outgoing_pool per pool, and xmpp_stanza_count per counter (total since "
                .. "the node started, increment since the last report delivered, all of it "
                .. "when the node restarted since). Stanza counts are MongooseIM 6.2's "
                .. "exometer counters; 6.3 and later count stanzas as "
                .. "Prometheus xmpp_element_* metrics, not read here.",
                events, { sources = { "config", "graphql", "domains" },
                          items = { type = "object", fields = {
                              { name = "name", type = "string", description = "The event name." },
                              { name = "params", type = "map", values = "scalar",
                                description = "The event's parameters." },
                          } } }),
    },
}
