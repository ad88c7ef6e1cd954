-- MongooseIM system metrics: Google Analytics 4 Measurement Protocol events, 5 minutes
-- after start and then every 3 hours (both configurable, in milliseconds).
local F = require("phonehome.fields")

-- DDDD-HH:MM:SS, as MongooseIM formats the node's uptime
local function uptime(seconds)
    local s = math.floor(seconds)
    return string.format("%04d-%02d:%02d:%02d", s // 86400, s % 86400 // 3600, s % 3600 // 60,
        s % 60)
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    return keys
end

-- Stanza counters MongooseIM reports, each with its total and the increase since the
-- previous report (the first report counts all of them as new).
local stanza_types = { "xmppMessageSent", "xmppMessageReceived", "xmppIqSent", "xmppIqReceived",
                       "xmppPresenceSent", "xmppPresenceReceived" }

local function enabled(list)
    local params = {}
    for _, name in ipairs(list) do params[name] = "enabled" end
    return params
end

local function events(ctx)
    local s = ctx.settings
    local out = {}
    local function add(name, params) out[#out + 1] = { name = name, params = params } end
    add("host_count", { value = s.host_count })
    add("domain_count", { value = s.domain_count })
    for _, module in ipairs(sorted_keys(s.modules)) do
        local params = { module = module }
        for opt, v in pairs(s.modules[module]) do params[opt] = v end
        add("module_with_opt", params)
    end
    add("custom_module_count", { value = s.custom_module_count })
    add("cluster", { uptime = uptime(ctx.process.uptime), version = s.version,
                     component = s.component_count, node_number = s.node_number,
                     config_type = s.config_type })
    add("http_api", enabled(s.http_api))
    add("transport_mechanism", enabled(s.transport_mechanism))
    for _, t in ipairs(s.tls_option) do add("tls_option", { mode = t.mode, module = t.module }) end
    for _, pool in ipairs(s.outgoing_pool) do add("outgoing_pool", { value = pool }) end
    local before = {}
    for _, e in ipairs(ctx.previous and ctx.previous.events or {}) do
        if e.name == "xmpp_stanza_count" then before[e.params.stanza_type] = e.params.total end
    end
    for _, stanza in ipairs(stanza_types) do
        local total = s.xmpp_stanza_count[stanza] or 0
        add("xmpp_stanza_count", { stanza_type = stanza, total = total,
                                   increment = total - (before[stanza] or 0) })
    end
    return out
end

return {
    name = "mongooseim",
    version = "1.0.0",
    description = "System metrics of a MongooseIM cluster, sent as Google Analytics 4 events: "
        .. "version, uptime, cluster size, modules and APIs in use, stanza counts.",
    endpoint = "https://www.google-analytics.com/mp/collect",
    method = "POST",
    format = "ga4",
    identity = { field = "client_id" },
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
    settings = {
        { name = "report", type = "bool",
          description = "false: nothing runs; true: reports without the start-up notice; "
              .. "unset: reports and logs the notice." },
        { name = "initial_report", type = "int", default = 300000,
          description = "Delay of the first report after start, in milliseconds." },
        { name = "periodic_report", type = "int", default = 10800000,
          description = "Time between reports, in milliseconds." },
        { name = "tracking_id.id", type = "string",
          description = "The operator's own GA4 measurement id (G-XXXX), to receive a copy." },
        { name = "tracking_id.secret", type = "string",
          description = "The API secret of that measurement id." },
        { name = "version", type = "string", default = "6.2.0",
          description = "MongooseIM version." },
        { name = "host_count", type = "int", default = 1, description = "Configured host types." },
        { name = "domain_count", type = "int", default = 1, description = "Served XMPP domains." },
        { name = "modules", type = "map", default = {},
          description = "Enabled open-source modules, each with its reported options "
              .. "(e.g. {\"mod_vcard\": {\"backend\": \"rdbms\"}})." },
        { name = "custom_module_count", type = "int", default = 0,
          description = "Modules that are not part of MongooseIM (only counted)." },
        { name = "component_count", type = "int", default = 0,
          description = "Connected external XMPP components." },
        { name = "node_number", type = "int", default = 1, description = "Nodes in the cluster." },
        { name = "config_type", type = "string", default = "toml",
          description = "The configuration file format." },
        { name = "http_api", type = "array", default = {},
          description = "Enabled open-source HTTP APIs (mongoose_client_api, mongoose_admin_api, "
              .. "mod_bosh, mod_websockets), reported in one event." },
        { name = "transport_mechanism", type = "array", default = {},
          description = "XMPP transports in use (tcp, mod_bosh, mod_websockets), reported in one "
              .. "event." },
        { name = "tls_option", type = "array", default = {},
          description = "TLS setups of the client listeners, each { mode = ..., module = ... }." },
        { name = "outgoing_pool", type = "array", default = {},
          description = "Types of the outgoing connection pools (rdbms, redis, ...)." },
        { name = "xmpp_stanza_count", type = "map", default = {},
          description = "Stanzas counted since start, by counter (xmppMessageSent, "
              .. "xmppIqReceived, ...); "
              .. "counters not given are 0." },
    },
    fields = {
        F.instance_id("client_id", "The cluster's id, a random UUID kept across restarts."),
        F.value("events", "array",
                "The metrics, one GA4 event each (sent at most 25 to a request).", events,
                { items = { type = "object", fields = {
                    { name = "name", type = "string", description = "The event name." },
                    { name = "params", type = "map", values = "scalar",
                      description = "The event's parameters." },
                } } }),
    },
}
