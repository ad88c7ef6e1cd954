-- Coroot anonymous usage statistics: one report at start, then every hour, read from
-- Coroot's own data directory, database, config file, web page and process.
local F = require("phonehome.fields")
local json = require("phonehome.json")

-- f(...), or nil when what it reads is not there (no Coroot process, a source that
-- failed); a source not read yet is re-raised, so that the host reads it first.
local function try(f, ...)
    local ok, v = pcall(f, ...)
    if ok then return v end
    if type(v) ~= "string" then error(v, 0) end
    return nil
end

local function at(t, key)
    for part in key:gmatch("[^%.]+") do
        if type(t) ~= "table" then return nil end
        t = t[part]
    end
    return t
end

-- A setting of Coroot's as Coroot resolves it: its flag, then its environment variable,
-- then its key in config.yaml; empty counts as unset.
local function option(ctx, flag, env, key)
    local function text(v) return type(v) == "string" and v ~= "" and v or nil end
    return text(try(function() return ctx.process.flag(flag) end))
        or text(try(function() return ctx.process.env(env) end))
        or text(try(function() return at(ctx.sources.config, key) end))
end

local function data_dir(ctx)
    local dir = ctx.settings.data_dir or option(ctx, "--data-dir", "DATA_DIR", "data_dir")
        or "/data"
    -- relative to Coroot's working directory, which phonehome cannot see
    if dir:sub(1, 1) ~= "/" then
        error("Coroot's data directory " .. dir .. " is relative: set coroot.data_dir", 0)
    end
    return (dir:gsub("/+$", ""))
end

local function pg_connection(ctx)
    return option(ctx, "--pg-connection-string", "PG_CONNECTION_STRING",
                  "postgres.connection_string")
end

-- The address of Coroot's web UI: --listen (LISTEN, listen_address; 0.0.0.0:8080 by
-- default) under --url-base-path (URL_BASE_PATH, url_base_path), as Coroot cleans it.
local function ui_url(ctx)
    local base = ctx.settings.url
    if not base then
        local listen = option(ctx, "--listen", "LISTEN", "listen_address") or "0.0.0.0:8080"
        local host, port = listen:match("^(.*):(%d+)$")
        if not host then error("cannot read Coroot's listen address " .. listen, 0) end
        if host == "" or host == "0.0.0.0" then host = "127.0.0.1" end
        if host == "[::]" then host = "[::1]" end
        local path = (option(ctx, "--url-base-path", "URL_BASE_PATH", "url_base_path") or "")
            :gsub("^/+", ""):gsub("/+$", "")
        base = "http://" .. host .. ":" .. port .. (path == "" and "/" or "/" .. path .. "/")
    end
    -- every path under the base path that is not an API gives the page
    return (base:gsub("/*$", "/")) .. "index.html"
end

local function decode(text, what)
    if text == nil then return {} end
    local v, err = json.decode(text)
    if v == nil then error(what .. ": " .. tostring(err), 0) end
    return v
end

-- The projects as Coroot's GetProjects reads them, in the database's order: JSON columns
-- decoded (null members dropped), refresh_interval defaulting to 30 s.
local function projects(ctx)
    local out = {}
    for _, row in ipairs(ctx.sources.db.projects) do
        local prometheus = json.without_nulls(decode(row.prometheus, "project " .. row.id
            .. " prometheus"))
        local settings = json.without_nulls(decode(row.settings, "project " .. row.id
            .. " settings"))
        if type(prometheus) ~= "table" or type(settings) ~= "table" then
            error("project " .. row.id .. ": prometheus and settings must be JSON objects", 0)
        end
        if (tonumber(prometheus.refresh_interval) or 0) == 0 then
            prometheus.refresh_interval = 30
        end
        settings.integrations = settings.integrations or {}
        out[#out + 1] = { id = row.id, prometheus = prometheus, settings = settings }
    end
    return out
end

local function any_project(ctx, test)
    for _, p in ipairs(projects(ctx)) do
        if test(p) then return true end
    end
    return false
end

local function sorted(set)
    local list = {}
    for k in pairs(set) do list[#list + 1] = k end
    table.sort(list)
    return json.array(list)
end

-- The ClickHouse integration of the last project that has one (Coroot overwrites the
-- flags project by project), or nil.
local function clickhouse(ctx)
    local found
    for _, p in ipairs(projects(ctx)) do
        local ch = p.settings.integrations.clickhouse
        if type(ch) == "table" and type(ch.addr) == "string" and ch.addr ~= "" then found = ch end
    end
    return found
end

local function clickhouse_flag(test)
    return function(ctx)
        local ch = clickhouse(ctx)
        return ch ~= nil and test(ch)
    end
end

-- Overridden inspections per check id. A project whose check_configs rows do not all
-- decode counts for nothing (Coroot skips it); a row with an application id Coroot cannot
-- parse (fewer than three ':' parts) is skipped, "::" is the project level.
local function inspection_overrides(ctx)
    local by_project = {}
    for _, row in ipairs(ctx.sources.db.check_configs) do
        local list = by_project[row.project_id] or {}
        by_project[row.project_id] = list
        list[#list + 1] = row
    end
    local out = {}
    for _, p in ipairs(projects(ctx)) do
        local counts, ok = {}, true
        for _, row in ipairs(by_project[p.id] or {}) do
            local app = row.application_id
            if select(2, app:gsub(":", "")) >= 2 and row.configs ~= nil then
                local configs = json.decode(row.configs)
                if type(configs) ~= "table" and configs ~= json.null then ok = false break end
                for check in pairs(configs ~= json.null and configs or {}) do
                    counts[#counts + 1] = { check, app == "::" }
                end
            end
        end
        for _, c in ipairs(ok and counts or {}) do
            local o = out[c[1]] or { project_level = 0, application_level = 0 }
            out[c[1]] = o
            if c[2] then
                o.project_level = o.project_level + 1
            else
                o.application_level = o.application_level + 1
            end
        end
    end
    return out
end

local ALERTING = { "slack", "teams", "pagerduty", "opsgenie", "webhook" }

local UNREACHABLE_WORLD = " Coroot computes it from its model of the last hour of metrics "
    .. "(its Prometheus cache), which cannot be read from outside Coroot: null unless given."
local UNREACHABLE_UI = " Only Coroot's server sees the browser sessions it is counted from: "
    .. "null unless given."

local function world(name, kind, description, opts)
    return F.setting(name, kind, description .. UNREACHABLE_WORLD, nil, opts)
end

local function browser(name, kind, description, opts)
    return F.setting(name, kind, description .. UNREACHABLE_UI, nil, opts)
end

local function from_db(name, kind, description, value, opts)
    opts = opts or {}
    opts.source, opts.null = "db", true
    return F.value(name, kind, description .. " Null when Coroot's database cannot be read.",
                   value, opts)
end

-- A sampler's window as Coroot sends its series: the values, or null when there is none.
local function window(samples)
    if samples.count == 0 then return nil end
    return samples.values
end

return {
    name = "coroot",
    version = "1.1.0",
    description = "Anonymous usage statistics of a Coroot server: its integrations, the stack "
        .. "it observes, the size of the infrastructure, how the UI is used, and performance.",
    endpoint = "https://coroot.com/ce/usage-statistics",
    method = "POST",
    delivery = { retries = 0, timeout = "60s" },
    schedule = { first = "1h", interval = "1h", at_start = true, anchor = "previous" },
    identity = {
        file = "instance.uuid", field = "instance.uuid", source = "uuid",
        -- Coroot's own id, as Coroot reads it (spaces trimmed); a file that does not hold
        -- a UUID is Coroot's to replace, so phonehome's own id stands in meanwhile
        value = function(ctx)
            local ok, text = pcall(function() return ctx.sources.uuid end)
            -- a dry build (check, reload) reads no source: nothing to say about the id
            if not ok and tostring(text):find("source 'uuid' was not read", 1, true) then
                return ctx.instance_id
            end
            if not ok then error(text, 0) end
            local id = text:match("^%s*(.-)%s*$")
            local hex = id:gsub("^urn:uuid:", ""):gsub("^(%x+)%-(%x+)%-(%x+)%-(%x+)%-(%x+)$",
                function(a, b, c, d, e)
                    return #a == 8 and #b == 4 and #c == 4 and #d == 4 and #e == 12
                        and a .. b .. c .. d .. e or nil
                end)
            if not hex:match("^" .. ("%x"):rep(32) .. "$") then
                error("instance.uuid does not hold a UUID", 0)
            end
            return id
        end,
    },
    optout = {
        default = "on",
        flags = { { name = "--disable-usage-statistics" } },
        env = { { name = "DISABLE_USAGE_STATISTICS",
                  off = { "1", "true", "t", "TRUE", "True", "T" } } },
        settings = { { name = "disable_usage_statistics", off = { true } } },
    },
    disclosure = {
        on = "Coroot collects anonymous usage statistics to improve the product. Turn this off "
            .. "with --disable-usage-statistics or DISABLE_USAGE_STATISTICS=true. "
            .. "See https://docs.coroot.com/configuration/usage-statistics",
        off = "Coroot anonymous usage statistics are disabled: nothing is sent.",
    },
    -- Coroot samples its own process every minute and empties both series at each report
    samplers = {
        { name = "cpu", probe = "process.cpu", every = "1m",
          description = "CPU time the Coroot process used over each minute, in cores." },
        { name = "memory", probe = "process.rss", every = "1m",
          description = "Resident memory of the Coroot process, each minute." },
    },
    -- the Coroot server: its executable is named coroot (/opt/coroot/coroot in its image),
    -- which its agents (coroot-node-agent, coroot-cluster-agent) are not
    process = {
        exe = "coroot",
        flags = { "--data-dir", "--pg-connection-string", "--config", "--listen",
                  "--url-base-path" },
        env = { "DATA_DIR", "PG_CONNECTION_STRING", "CONFIG", "LISTEN", "URL_BASE_PATH" },
    },
    sources = {
        { name = "config", kind = "yaml",
          description = "Coroot's config.yaml: coroot.config, else the process's --config "
              .. "(CONFIG)",
          path = function(ctx)
              local path = ctx.settings.config
                  or try(function() return ctx.process.flag("--config") end)
                  or try(function() return ctx.process.env("CONFIG") end)
              if type(path) ~= "string" or path == "" then
                  error("Coroot runs without a config file (no --config, CONFIG or "
                      .. "coroot.config)", 0)
              end
              return path
          end },
        { name = "uuid", kind = "file", max_bytes = 4096,
          description = "<data-dir>/instance.uuid, the id Coroot made at its first start: "
              .. "the report's instance.uuid (identity)",
          path = function(ctx) return data_dir(ctx) .. "/instance.uuid" end },
        { name = "db", kind = "sql",
          description = "Coroot's database: the PostgreSQL of --pg-connection-string "
              .. "(PG_CONNECTION_STRING, postgres.connection_string), else "
              .. "<data-dir>/db.sqlite; the queries of Coroot's stats collector",
          database = function(ctx) return pg_connection(ctx) or data_dir(ctx) .. "/db.sqlite" end,
          queries = {
              projects = "SELECT id, name, prometheus, settings FROM project",
              check_configs = "SELECT project_id, application_id, configs FROM check_configs",
              notifications = "SELECT destination, count(*) AS n FROM incident_notification "
                  .. "WHERE timestamp >= :since AND sent_at > 0 GROUP BY destination",
              -- the last 100 rollouts of each application, as Coroot loads them
              deployments = "SELECT count(*) AS n FROM (SELECT started_at, row_number() "
                  .. "OVER (PARTITION BY project_id, application_id ORDER BY started_at DESC) "
                  .. "AS rn FROM application_deployment WHERE project_id IN "
                  .. "(SELECT id FROM project)) d WHERE rn <= 100 AND started_at >= :since",
          },
          params = function(ctx) return { since = math.floor(ctx.now) - 3600 } end },
        { name = "ui", kind = "http", format = "text", max_bytes = 65536, timeout = "5s",
          description = "Coroot's web page, which carries its version: coroot.url, else "
              .. "the address of --listen (LISTEN, listen_address) under --url-base-path",
          url = ui_url },
    },
    settings = {
        { name = "data_dir", type = "string",
          description = "Coroot's data directory. By default the Coroot process's --data-dir "
              .. "(or DATA_DIR, or data_dir in config.yaml), else /data." },
        { name = "config", type = "string",
          description = "Path of Coroot's config.yaml. By default the Coroot process's "
              .. "--config (or CONFIG)." },
        { name = "url", type = "string",
          description = "Coroot's web address, such as http://127.0.0.1:8080/. By default "
              .. "from the Coroot process's --listen and --url-base-path." },
        { name = "disable_usage_statistics", type = "bool", default = false,
          source = "config", key = "disable_usage_statistics",
          description = "Coroot's config switch (disable_usage_statistics in config.yaml): "
              .. "true turns usage statistics off." },
    },
    fields = {
        F.object("instance", "This Coroot installation.", {
            F.instance_id("uuid", "Random id Coroot made at its first start and keeps in "
                .. "<data-dir>/instance.uuid; phonehome's own while that file cannot be read."),
            F.value("version", "string", "The Coroot version, from its web page; null when "
                .. "the page cannot be read.",
                function(ctx)
                    local v = ctx.sources.ui:match("version:%s*'([^']*)'")
                    if not v then error("no version in Coroot's web page", 0) end
                    return v
                end, { source = "ui", null = true }),
            F.value("database_type", "string", "The database Coroot keeps its configuration "
                .. "in: postgres when it has a PostgreSQL connection string, else sqlite.",
                function(ctx) return pg_connection(ctx) and "postgres" or "sqlite" end,
                { source = "config" }),
        }),
        F.object("integration", "What Coroot is connected to.", {
            from_db("prometheus", "bool", "Whether a project has a Prometheus URL.",
                function(ctx)
                    return any_project(ctx, function(p)
                        return type(p.prometheus.url) == "string" and p.prometheus.url ~= ""
                    end)
                end),
            from_db("prometheus_refresh_interval", "int", "The shortest Prometheus refresh "
                .. "interval of the projects (30 s where a project sets none); 0 without "
                .. "projects.",
                function(ctx)
                    local min = 0
                    for _, p in ipairs(projects(ctx)) do
                        local ri = math.tointeger(tonumber(p.prometheus.refresh_interval)) or 0
                        if min == 0 or ri < min then min = ri end
                    end
                    return min
                end, { unit = "seconds" }),
            world("node_agent", "bool", "Whether metrics from coroot-node-agent were seen."),
            world("node_agent_versions", "array", "Versions of coroot-node-agent seen on the "
                .. "nodes.", { items = "string" }),
            world("kube_state_metrics", "bool", "Whether metrics from kube-state-metrics were "
                .. "seen, where a project needs them."),
            from_db("inspection_overrides", "map", "Inspection thresholds overridden in "
                .. "check_configs, per inspection: for a whole project or for one application.",
                inspection_overrides,
                { values = { type = "object", fields = {
                    { name = "project_level", type = "int",
                      description = "Overrides for a whole project." },
                    { name = "application_level", type = "int",
                      description = "Overrides for one application." },
                } } }),
            from_db("application_categories", "int", "Distinct custom application categories "
                .. "of the projects.",
                function(ctx)
                    local set = {}
                    for _, p in ipairs(projects(ctx)) do
                        for name in pairs(p.settings.application_categories or {}) do
                            if name ~= "" then set[name] = true end
                        end
                    end
                    return #sorted(set)
                end),
            from_db("alerting_integrations", "array", "Kinds of notification integration "
                .. "configured in a project (slack, teams, pagerduty, opsgenie, webhook), sorted.",
                function(ctx)
                    local set = {}
                    for _, p in ipairs(projects(ctx)) do
                        for _, kind in ipairs(ALERTING) do
                            if p.settings.integrations[kind] ~= nil then set[kind] = true end
                        end
                    end
                    return sorted(set)
                end, { items = "string" }),
            world("cloud_costs", "bool", "Whether node prices are known for the cloud in use."),
            from_db("clickhouse", "bool", "Whether a project has a ClickHouse address.",
                    clickhouse_flag(function() return true end)),
            from_db("tracing", "bool", "Whether the ClickHouse integration (of the last "
                .. "project that has one) names a traces table.",
                clickhouse_flag(function(ch) return (ch.traces_table or "") ~= "" end)),
            from_db("logs", "bool", "Whether that ClickHouse integration names a logs table.",
                clickhouse_flag(function(ch) return (ch.logs_table or "") ~= "" end)),
            from_db("profiles", "bool", "Whether profiling is left on in that ClickHouse "
                .. "integration.",
                clickhouse_flag(function(ch) return not ch.profiling_disabled end)),
        }),
        F.object("stack", "Technologies seen in the monitored systems.", {
            world("clouds", "array", "Cloud providers, from the node_cloud_info metric.",
                  { items = "string" }),
            world("services", "array", "Kinds of service, from the container_application_type "
                .. "metric.", { items = "string" }),
            world("instrumented_services", "array", "Services watched by their own exporters "
                .. "(pg-agent, redis_exporter, ...).", { items = "string" }),
        }),
        F.object("infra", "Size of the monitored infrastructure.", {
            from_db("projects", "int", "Projects in Coroot's database.",
                    function(ctx) return #projects(ctx) end),
            world("nodes", "int", "Nodes."),
            world("applications", "int", "Applications in all projects."),
            world("instances", "int", "Application instances (containers)."),
            from_db("deployments", "int", "Application rollouts started in the last hour "
                .. "(of the last 100 of each application), from application_deployment. Coroot "
                .. "also leaves out applications missing from its model of the last hour.",
                function(ctx) return ctx.sources.db.deployments[1].n end),
            world("deployment_summaries", "map", "Notable changes seen in those rollouts, "
                .. "counted by kind (\"+Logs\", \"-CPU\"); judged against SLOs and metrics.",
                { values = "int" }),
        }),
        F.object("ux", "How the web interface is used.", {
            world("world_load_time_avg", "number", "Average time to load the model from the "
                .. "Prometheus cache.", { unit = "seconds" }),
            world("audit_time_avg", "number", "Average time to audit the model.",
                  { unit = "seconds" }),
            browser("users_by_screen_size", "map", "Browsers counted by display breakpoint "
                .. "(xs ... xl).", { values = "int" }),
            browser("users_by_theme", "map", "Browsers counted by UI theme (light, dark).",
                    { values = "int" }),
            browser("users", "array", "Random ids of the browsers that used the UI.",
                    { items = "string" }),
            browser("page_views", "map", "Page views counted by route.", { values = "int" }),
            from_db("sent_notifications", "map", "Incident notifications sent in the last "
                .. "hour, counted by destination, from incident_notification.",
                function(ctx)
                    local out = {}
                    for _, row in ipairs(ctx.sources.db.notifications) do
                        out[row.destination] = row.n
                    end
                    return out
                end, { values = "int" }),
        }),
        F.object("performance", "How Coroot itself performs.", {
            F.object("constructor", "Building the model from the Prometheus cache.", {
                world("stages", "map", "Longest time of each loading and processing stage.",
                      { values = "number", unit = "seconds" }),
                world("queries", "map", "Each Prometheus query: its result size, latency and "
                    .. "whether it failed.", { values = { type = "object", fields = {
                        { name = "metrics_count", type = "int", description = "Series returned." },
                        { name = "query_time", type = "number", unit = "seconds",
                          description = "How long the query took." },
                        { name = "failed", type = "bool",
                          description = "Whether the query failed." },
                    } } }),
            }),
            F.value("cpu_usage", "array", "CPU used by the Coroot process, in cores: one "
                .. "sample a minute since the last report delivered (Δ CPU time over the "
                .. "minute; a process's first minute gives none); null when there is none.",
                function(ctx) return window(ctx.samples.cpu) end,
                { items = "number", unit = "cores", null = true }),
            F.value("memory_usage", "array", "Resident memory of the Coroot process: one "
                .. "sample a minute since the last report delivered; null when there is none.",
                function(ctx) return window(ctx.samples.memory) end,
                { items = "int", unit = "bytes", null = true }),
        }),
        F.object("profile", "Profiles of the Coroot process while it built its report.", {
            F.value("from", "int", "When the report's figures started to be read.",
                    function(ctx) return math.floor(ctx.now) end,
                    { unit = "seconds since the epoch" }),
            F.value("to", "int", "When they were read.",
                    function(ctx) return math.floor(ctx.system.time()) end,
                    { unit = "seconds since the epoch" }),
            F.setting("cpu", "string", "CPU profile, base64 pprof. Only Coroot's own profiler "
                .. "can take it: null unless given."),
            F.setting("memory", "string", "Memory profile, base64 pprof. Only Coroot's own "
                .. "profiler can take it: null unless given."),
        }),
    },
}
