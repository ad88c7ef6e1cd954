-- ElectricSQL sync service telemetry (the 0.x service, 2023–2024): a ~1.5 kB aggregate
-- POSTed 5 minutes after start and then every 4 hours, read from Electric's process and
-- its PostgreSQL.
local F = require("phonehome.fields")
local stats = require("phonehome.stats")
local iso8601 = require("phonehome.timefmt").iso8601

local DAY = 24 * 3600

-- What Electric counts in memory, a deployment pushes to phonehome as StatsD lines
-- (Electric's telemetry can export StatsD): each usage figure from one metric, named
-- electric.<figure>. Counters sum since the last report delivered; sets count distinct
-- ids; histograms give summaries; gauges their last value.
local PUSHED = {
    { "initial_syncs", "counter", "Initial syncs served." },
    { "operations_from_pg", "counter", "Operations received from PostgreSQL." },
    { "operations_received_from_clients", "counter", "Operations received from clients." },
    { "operations_sent_to_clients", "counter", "Operations sent to clients." },
    { "subscriptions_continued", "counter", "Subscriptions resumed by clients." },
    { "subscriptions_established", "counter", "New subscriptions." },
    { "transactions_from_pg", "counter", "Transactions received from PostgreSQL." },
    { "transactions_received_from_clients", "counter", "Transactions received from clients." },
    { "transactions_sent_to_clients", "counter", "Transactions sent to clients." },
    { "distinct_clients", "set", "Distinct clients that connected (a line per connection, "
        .. "the value the client's id)." },
    { "distinct_users", "set", "Distinct users that connected (a line per connection, the "
        .. "value the user's id)." },
    { "concurrent_clients", "gauge", "Clients connected at once (sampled every 2 s)." },
    { "subscriptions_continued_per_client", "histogram",
      "Subscriptions resumed per client (a value per client that resumed)." },
    { "subscriptions_included_tables", "histogram", "Tables included per subscription." },
    { "subscriptions_rows_per_shape", "histogram", "Rows per subscribed shape." },
    { "wal_cache_memory", "gauge", "Bytes held by the WAL cache." },
    { "wal_transactions", "gauge", "Transactions held by the WAL cache." },
    { "oldest_wal_time", "gauge", "Time of the oldest transaction in the WAL cache, in "
        .. "seconds since the epoch." },
}

local function pushed_metrics()
    local out = {}
    for i, m in ipairs(PUSHED) do
        out[i] = { name = "electric." .. m[1], type = m[2], description = m[3] }
    end
    return out
end

local PUSHED_NOTE = "From the StatsD metric electric.%s the deployment pushes to phonehome "
    .. "(docs electric lists them), since the last report delivered."

-- Electric's process, or nil when none runs: the fields that need it are then null. They
-- say nothing more, because a dry build (check, a reload) would warn about each of them
-- while Electric is down; the database source, which needs the process's DATABASE_URL,
-- still names the missing process in the log.
local function electric(ctx)
    local ok, p = pcall(function() return ctx.process end)
    return ok and p or nil
end

-- Epoch seconds of a timestamp as reports write it ("2023-09-19T14:40:45.972021Z").
local function epoch(iso)
    local y, m, d, hh, mm, ss = iso:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):([%d.]+)Z$")
    if not y then error("not a timestamp: " .. iso, 0) end
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    -- days since 1970-01-01 of a proleptic Gregorian date (years counted from March)
    if m <= 2 then y = y - 1 end
    local era = y // 400
    local yoe = y - era * 400
    local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
    local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- The previous report, when it was built while this Electric process ran.
local function previous_in_run(ctx, p)
    local prev = ctx.previous
    if type(prev) == "table" and type(prev.timestamp) == "string"
        and prev.timestamp >= iso8601(p.start_time) then
        return prev
    end
    return nil
end

-- Where Electric's current reporting period starts, as its reporter keeps it
-- (last_reported): nil until a report of this run of the process was sent; then that
-- report's timestamp. A report that failed leaves it, its figures carried into the next,
-- unless 24 hours have passed since: then the figures are dropped and a period starts.
-- Delivery drops failed reports, so the previous one was sent if anything was sent since.
local function last_reported(ctx, p)
    local prev = previous_in_run(ctx, p)
    if not prev then return nil end
    local sent = ctx.last_sent and iso8601(ctx.last_sent)
    if sent and sent >= prev.timestamp then return prev.timestamp end
    local since = type(prev.last_reported) == "string" and prev.last_reported or nil
    local from = since and epoch(since) or p.start_time
    if epoch(prev.timestamp) - from >= DAY then return prev.timestamp end
    return since
end

-- The same, as the start of the period whose migrations count: the process's start
-- before its first report. Without the process the period is unknown: a time no row
-- passes keeps the source readable for the other fields.
local function period_start(ctx)
    local p = electric(ctx)
    return p and (last_reported(ctx, p) or iso8601(p.start_time)) or "infinity"
end

local summary_fields = {
    { name = "max", type = "number", description = "Largest sample." },
    { name = "mean", type = "number", description = "Mean of the samples." },
    { name = "median", type = "number", description = "Median of the samples." },
    { name = "min", type = "number", description = "Smallest sample." },
    { name = "mode", type = "number", null = true,
      description = "Most frequent sample; null when there is none." },
}

-- The field of figure name, from the metric electric.<name> (PUSHED): a counter's sum, a
-- set's distinct count, a histogram's summary (Electric's empty one when nothing came),
-- or a gauge's value (null until the deployment sets it; opts.convert turns it into the
-- field's kind, opts.description says it in the field's terms).
local function pushed(name, opts)
    local kind, description
    for _, m in ipairs(PUSHED) do
        if m[1] == name then kind, description = m[2], m[3] end
    end
    opts = opts or {}
    description = opts.description or description
    local note = string.format(PUSHED_NOTE, name)
    local function metric(ctx) return ctx.metrics["electric." .. name] end
    if kind == "counter" then
        return F.value(name, "int", description .. " " .. note,
                       function(ctx) return math.floor(metric(ctx).value + 0.5) end)
    elseif kind == "set" then
        return F.value(name, "int", description .. " " .. note,
                       function(ctx) return metric(ctx).count end)
    elseif kind == "histogram" then
        return F.value(name, "object", description .. " " .. note, function(ctx)
            local h = metric(ctx)
            if h.count == 0 then return stats.summary({}) end
            return { min = h.min, max = h.max, mean = h.mean, median = h.median, mode = h.mode }
        end, { fields = summary_fields })
    end
    return F.value(name, opts.kind or "int", description .. " " .. note .. " Null until it "
        .. "is set.", function(ctx)
        local v = metric(ctx).value
        if v == nil then return nil end
        return opts.convert and opts.convert(v) or math.floor(v + 0.5)
    end, { null = true, unit = opts.unit })
end

local function row(ctx, query, column)
    local r = ctx.sources.db[query][1]
    if r == nil or r[column] == nil then error("query '" .. query .. "' found no row", 0) end
    return r[column]
end

return {
    name = "electric",
    version = "2.0.0",
    description = "Anonymous telemetry of an Electric sync service: the software and its "
        .. "environment, connected clients and subscriptions, and replicated volume.",
    endpoint = "https://checkpoint.electric-sql.com",
    method = "POST",
    -- Jason writes maps of up to 32 keys in sorted order
    canonical = true,
    -- Req.post!(url, json: report, retry: :transient) with Req 0.5.0 (Electric's last 0.x
    -- lock): 3 retries at 1, 2 and 4 s on these statuses and on connection errors, 15 s to
    -- receive, 30 s to connect. A report that fails is not resent: its figures go into the
    -- next one (see last_reported), so a failed report is dropped here.
    delivery = { retries = 3, backoff = "1s", retry_on = { 408, 429, 500, 502, 503, 504 },
                 timeout = "15s", connect_timeout = "30s", user_agent = "req/0.5.0",
                 drop_failed = true },
    schedule = { first = "5m", interval = "4h", anchor = "previous" },
    -- Electric samples every 2 s and keeps its aggregates through 24 h of failed reports
    samplers = {
        { name = "memory", probe = "process.rss", every = "2s", max = 43200,
          description = "Resident memory of the service's process." },
        { name = "clients", metric = "electric.concurrent_clients", every = "2s", max = 43200,
          description = "Clients connected at once, as the deployment last said." },
    },
    metrics = pushed_metrics(),
    -- the Elixir release runs beam.smp with its node named after the release
    process = { command = "beam%.smp .*%-s?name electric[%s@]",
                env = { "DATABASE_URL", "ELECTRIC_INSTANCE_ID", "ELECTRIC_TELEMETRY",
                        "RELEASE_VSN" } },
    sources = {
        { name = "db", kind = "sql",
          description = "Electric's PostgreSQL (DATABASE_URL): its version, the cluster id "
              .. "Electric keeps there and the schema versions Electric saved",
          database = function(ctx)
              local url = ctx.settings.database_url or ctx.process.env("DATABASE_URL")
              if not url then
                  error("DATABASE_URL is not set in Electric's environment; set "
                      .. "electric.database_url", 0)
              end
              return url
          end,
          queries = {
              server_version = "SHOW server_version",
              cluster_id = "SELECT content->>0 AS id FROM electric.transaction_marker "
                  .. "WHERE id = 'cluster_id'",
              -- the tables of the last schema version saved in this period, less
              -- Electric's own (shadow tables and the like, in its schema)
              electrified = "SELECT count(*) AS n FROM (SELECT \"schema\" FROM "
                  .. "electric.\"schema\" WHERE created_at > CAST(:since AS timestamptz) "
                  .. "ORDER BY id DESC LIMIT 1) AS latest, "
                  .. "jsonb_array_elements(latest.\"schema\"->'tables') AS t "
                  .. "WHERE t->'name'->>'schema' IS DISTINCT FROM 'electric'",
          },
          params = function(ctx) return { since = period_start(ctx) } end },
    },
    settings = {
        { name = "database_url", type = "string",
          description = "PostgreSQL URL of Electric's database (default: DATABASE_URL in "
              .. "the Electric process's environment)" },
        { name = "electric_version", type = "string",
          description = "Electric's version when it does not run from its release (default: "
              .. "RELEASE_VSN in the Electric process's environment)" },
    },
    -- the cluster id Electric keeps in PostgreSQL; phonehome's own until Electric saved one
    -- (said here rather than warned: a dry build, which reads no source, would warn too;
    -- a database that cannot be read is logged by the fields that read it)
    identity = { field = "data.environment.electric_cluster_uuid", source = "db",
                 value = function(ctx)
                     local ok, id = pcall(row, ctx, "cluster_id", "id")
                     return ok and id or ctx.instance_id
                 end },
    optout = {
        default = "on",
        env = { { name = "ELECTRIC_TELEMETRY",
                  off = { "0", "f", "false", "disable", "disabled", "n", "no", "off" },
                  on = { "1", "t", "true", "enable", "enabled", "y", "yes", "on" } } },
    },
    disclosure = {
        on = "Electric sends anonymous usage data to https://checkpoint.electric-sql.com every "
            .. "4 hours. Set ELECTRIC_TELEMETRY=disabled to opt out.",
        off = "Electric telemetry is disabled (ELECTRIC_TELEMETRY): nothing is sent.",
    },
    fields = {
        F.value("last_reported", "string",
                "When the previous report of this run of Electric was built; null before "
                .. "its first (and when Electric's process is not found). A report that "
                .. "failed is carried into the next, for 24 hours.",
                function(ctx)
                    local p = electric(ctx)
                    return p and last_reported(ctx, p)
                end, { unit = "ISO 8601 UTC", null = true }),
        F.value("timestamp", "string", "When this report was built.",
                function(ctx) return iso8601(ctx.now) end, { unit = "ISO 8601 UTC" }),
        F.object("data", "The report itself.", {
            F.value("electric_version", "string",
                    "Version of the Electric sync service (RELEASE_VSN in its environment).",
                    function(ctx)
                        local p = electric(ctx)
                        return ctx.settings.electric_version or p and p.env("RELEASE_VSN")
                    end, { null = true }),
            F.object("environment", "Where the service runs.", {
                F.value("arch", "string",
                        "The system architecture triple, as the Erlang VM names it.",
                        function(ctx)
                            local m = ctx.system.machine()
                            local vendor = m:match("^x86") and "pc" or "unknown"
                            return m .. "-" .. vendor .. "-" .. ctx.system.os():lower() .. "-gnu"
                        end),
                F.value("cores", "int", "Logical processor cores.",
                        function(ctx) return ctx.system.cores() end),
                F.instance_id("electric_cluster_uuid",
                              "Random id of the installation, kept by Electric in its "
                              .. "PostgreSQL (electric.transaction_marker); phonehome's own "
                              .. "until Electric has saved one."),
                F.value("electric_instance_id", "string",
                        "ELECTRIC_INSTANCE_ID in Electric's environment, else a random id "
                        .. "drawn for each start of the service; null when its process is "
                        .. "not found.",
                        function(ctx)
                            local p = electric(ctx)
                            if not p then return nil end
                            local id = p.env("ELECTRIC_INSTANCE_ID")
                            if id then return id end
                            local prev = previous_in_run(ctx, p)
                            local env = prev and type(prev.data) == "table"
                                and prev.data.environment
                            local kept = type(env) == "table" and env.electric_instance_id
                            return type(kept) == "string" and kept or ctx.uuid()
                        end, { null = true }),
                F.object("os", "The operating system.", {
                    F.value("family", "string", "unix or win32.", "unix"),
                    F.value("name", "string", "The kernel, in lower case.",
                            function(ctx) return ctx.system.os():lower() end),
                }),
                F.value("pg_version", "string",
                        "Version of the PostgreSQL server Electric replicates from "
                        .. "(SHOW server_version).",
                        function(ctx) return row(ctx, "server_version", "server_version") end,
                        { source = "db", null = true }),
                F.value("ram", "int", "Physical memory.",
                        function(ctx) return ctx.system.memory_total() end, { unit = "bytes" }),
            }),
            F.object("resources", "Resources the service uses.", {
                pushed("oldest_wal_time", {
                    description = "Time of the oldest transaction in Electric's WAL cache "
                        .. "(ISO 8601).",
                    kind = "string", convert = function(v) return iso8601(v, 6) end }),
                F.value("uptime", "int",
                        "Time since the service started; null when its process is not found.",
                        function(ctx)
                            local p = electric(ctx)
                            return p and math.floor(p.uptime)
                        end, { unit = "seconds", null = true }),
                F.value("used_memory", "object",
                        "Resident memory of the service's process, sampled every 2 s since "
                        .. "the last report delivered (Electric samples its VM's allocated "
                        .. "memory, which only the VM can read); with no sample yet, one "
                        .. "reading now; null when its process is not found.",
                        function(ctx)
                            local window = ctx.samples.memory
                            if window.count > 0 then return stats.summary(window.values) end
                            local p = electric(ctx)
                            return p and stats.summary({ p.rss })
                        end, { unit = "bytes", null = true, fields = summary_fields }),
                pushed("wal_cache_memory", { unit = "bytes" }),
                pushed("wal_transactions"),
            }),
            F.object("usage", "What the service did.", {
                F.value("concurrent_clients", "object", "Clients connected at once, sampled "
                        .. "every 2 s from the gauge electric.concurrent_clients the deployment "
                        .. "pushes to phonehome, since the last report delivered.",
                        function(ctx) return stats.summary(ctx.samples.clients.values) end,
                        { fields = summary_fields }),
                pushed("distinct_clients"),
                pushed("distinct_users"),
                F.value("electrified_tables", "int",
                        "Tables Electric replicates, as of the last migration it applied "
                        .. "in this period; 0 when it applied none (as Electric reports).",
                        function(ctx)
                            local n = row(ctx, "electrified", "n")
                            return electric(ctx) and n  -- the period is the process's
                        end, { source = "db", null = true }),
                pushed("initial_syncs"),
                pushed("operations_from_pg"),
                pushed("operations_received_from_clients"),
                pushed("operations_sent_to_clients"),
                pushed("subscriptions_continued"),
                pushed("subscriptions_continued_per_client"),
                pushed("subscriptions_established"),
                pushed("subscriptions_included_tables"),
                pushed("subscriptions_rows_per_shape"),
                pushed("transactions_from_pg"),
                pushed("transactions_received_from_clients"),
                pushed("transactions_sent_to_clients"),
            }),
        }),
    },
}
