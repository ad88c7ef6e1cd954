-- ElectricSQL sync service telemetry (the documented 2023–2024 service): a ~1.5 kB
-- aggregate POSTed 5 minutes after start and then every 4 hours.
local stats = require("phonehome.stats")
local iso8601 = require("phonehome.timefmt").iso8601

-- A summary object: min, max, mean, median and mode of samples.
local function summary(name, description, unit, samples)
    return {
        name = name, type = "object", unit = unit, description = description,
        value = function(ctx) return stats.summary(samples(ctx)) end,
        fields = {
            { name = "min", type = "number", description = "Smallest sample." },
            { name = "max", type = "number", description = "Largest sample." },
            { name = "mean", type = "number", description = "Mean of the samples." },
            { name = "median", type = "number", description = "Median of the samples." },
            { name = "mode", type = "number", null = true,
              description = "Most frequent sample; null when there is none." },
        },
    }
end

local function count(name, description)
    return { name = name, type = "int", description = description, setting = { default = 0 } }
end

local function no_samples() return {} end

return {
    name = "electric",
    version = "1.0.0",
    description = "Anonymous telemetry of an Electric sync service: the software and its "
        .. "environment, connected clients and subscriptions, and replicated volume.",
    endpoint = "https://checkpoint.electric-sql.com",
    method = "POST",
    delivery = { retries = 3, backoff = "1s", retry_on = { 408, 429, 500, 502, 503, 504 } },
    schedule = { first = "5m", interval = "4h", anchor = "previous" },
    identity = { field = "data.environment.electric_cluster_uuid" },
    optout = {
        default = "on",
        env = { { name = "ELECTRIC_TELEMETRY",
                  off = { "disabled", "0", "f", "false", "disable", "n", "no", "off" },
                  on = { "enabled", "1", "t", "true", "enable", "y", "yes", "on" } } },
    },
    disclosure = {
        on = "Electric sends anonymous usage data to https://checkpoint.electric-sql.com every "
            .. "4 hours. Set ELECTRIC_TELEMETRY=disabled to opt out.",
        off = "Electric telemetry is disabled (ELECTRIC_TELEMETRY): nothing is sent.",
    },
    fields = {
        { name = "last_reported", type = "string", unit = "ISO 8601 UTC",
          description = "When the previous report was sent (process start for the first).",
          value = function(ctx) return iso8601(ctx.last_sent or ctx.process.start_time) end },
        { name = "timestamp", type = "string", unit = "ISO 8601 UTC",
          description = "When this report was built.",
          value = function(ctx) return iso8601(ctx.now) end },
        { name = "data", type = "object", description = "The report itself.", fields = {
            { name = "electric_version", type = "string", setting = { default = "0.5.3" },
              description = "Version of the Electric sync service." },
            { name = "environment", type = "object", description = "Where the service runs.", fields = {
                { name = "arch", type = "string",
                  description = "The system architecture triple, as the Erlang VM names it.",
                  value = function(ctx)
                      local m = ctx.system.machine()
                      local vendor = m:match("^x86") and "pc" or "unknown"
                      return m .. "-" .. vendor .. "-" .. ctx.system.os():lower() .. "-gnu"
                  end },
                { name = "cores", type = "int", description = "Logical processor cores.",
                  value = function(ctx) return ctx.system.cores() end },
                { name = "electric_cluster_uuid", type = "string",
                  description = "Random id of the installation, kept across restarts.",
                  value = function(ctx) return ctx.instance_id end },
                { name = "electric_instance_id", type = "string",
                  description = "Random id of this run of the service, new at each start.",
                  value = function(ctx) return ctx.session_id end },
                { name = "os", type = "object", description = "The operating system.", fields = {
                    { name = "family", type = "string", description = "unix or win32.",
                      value = "unix" },
                    { name = "name", type = "string", description = "The kernel, in lower case.",
                      value = function(ctx) return ctx.system.os():lower() end },
                } },
                { name = "pg_version", type = "string", null = true, setting = {},
                  description = "Version of the PostgreSQL server Electric replicates from." },
                { name = "ram", type = "int", unit = "bytes", description = "Physical memory.",
                  value = function(ctx) return ctx.system.memory_total() end },
            } },
            { name = "resources", type = "object", description = "Resources the service uses.", fields = {
                { name = "oldest_wal_time", type = "string", null = true, setting = {},
                  description = "Time of the oldest WAL entry kept in the cache (ISO 8601)." },
                { name = "uptime", type = "int", unit = "seconds",
                  description = "Time since the service started.",
                  value = function(ctx) return math.floor(ctx.process.uptime) end },
                summary("used_memory", "Memory used by the service, over the reporting period.",
                        "bytes", function(ctx) return { ctx.process.rss } end),
                count("wal_cache_memory", "Bytes held by the WAL cache."),
                count("wal_transactions", "Transactions held by the WAL cache."),
            } },
            { name = "usage", type = "object", description = "What the service did.", fields = {
                summary("concurrent_clients", "Clients connected at once, over the period.",
                        nil, no_samples),
                count("distinct_clients", "Distinct clients seen."),
                count("distinct_users", "Distinct users seen."),
                count("electrified_tables", "Tables Electric replicates."),
                count("initial_syncs", "Initial syncs served."),
                count("operations_from_pg", "Operations received from PostgreSQL."),
                count("operations_received_from_clients", "Operations received from clients."),
                count("operations_sent_to_clients", "Operations sent to clients."),
                count("subscriptions_continued", "Subscriptions resumed by clients."),
                summary("subscriptions_continued_per_client", "Subscriptions resumed per client.",
                        nil, no_samples),
                count("subscriptions_established", "New subscriptions."),
                summary("subscriptions_included_tables", "Tables included per subscription.",
                        nil, no_samples),
                summary("subscriptions_rows_per_shape", "Rows per subscribed shape.", nil, no_samples),
                count("transactions_from_pg", "Transactions received from PostgreSQL."),
                count("transactions_received_from_clients", "Transactions received from clients."),
                count("transactions_sent_to_clients", "Transactions sent to clients."),
            } },
        } },
    },
}
