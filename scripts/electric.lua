-- ElectricSQL sync service telemetry (the documented 2023–2024 service): a ~1.5 kB
-- aggregate POSTed 5 minutes after start and then every 4 hours.
local F = require("phonehome.fields")
local iso8601 = require("phonehome.timefmt").iso8601

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
        F.value("last_reported", "string",
                "When the previous report was sent (process start for the first).",
                function(ctx) return iso8601(ctx.last_sent or ctx.process.start_time) end,
                { unit = "ISO 8601 UTC" }),
        F.value("timestamp", "string", "When this report was built.",
                function(ctx) return iso8601(ctx.now) end, { unit = "ISO 8601 UTC" }),
        F.object("data", "The report itself.", {
            F.setting("electric_version", "string", "Version of the Electric sync service.",
                      "0.5.3"),
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
                              "Random id of the installation, kept across restarts."),
                F.value("electric_instance_id", "string",
                        "Random id of this run of the service, new at each start.",
                        function(ctx) return ctx.session_id end),
                F.object("os", "The operating system.", {
                    F.value("family", "string", "unix or win32.", "unix"),
                    F.value("name", "string", "The kernel, in lower case.",
                            function(ctx) return ctx.system.os():lower() end),
                }),
                F.setting("pg_version", "string",
                          "Version of the PostgreSQL server Electric replicates from."),
                F.value("ram", "int", "Physical memory.",
                        function(ctx) return ctx.system.memory_total() end, { unit = "bytes" }),
            }),
            F.object("resources", "Resources the service uses.", {
                F.setting("oldest_wal_time", "string",
                          "Time of the oldest WAL entry kept in the cache (ISO 8601)."),
                F.value("uptime", "int", "Time since the service started.",
                        function(ctx) return math.floor(ctx.process.uptime) end,
                        { unit = "seconds" }),
                F.summary("used_memory", "Memory used by the service, over the reporting period.",
                          function(ctx) return { ctx.process.rss } end, { unit = "bytes" }),
                F.count("wal_cache_memory", "Bytes held by the WAL cache."),
                F.count("wal_transactions", "Transactions held by the WAL cache."),
            }),
            F.object("usage", "What the service did.", {
                F.summary("concurrent_clients", "Clients connected at once, over the period.",
                          no_samples),
                F.count("distinct_clients", "Distinct clients seen."),
                F.count("distinct_users", "Distinct users seen."),
                F.count("electrified_tables", "Tables Electric replicates."),
                F.count("initial_syncs", "Initial syncs served."),
                F.count("operations_from_pg", "Operations received from PostgreSQL."),
                F.count("operations_received_from_clients", "Operations received from clients."),
                F.count("operations_sent_to_clients", "Operations sent to clients."),
                F.count("subscriptions_continued", "Subscriptions resumed by clients."),
                F.summary("subscriptions_continued_per_client",
                          "Subscriptions resumed per client.", no_samples),
                F.count("subscriptions_established", "New subscriptions."),
                F.summary("subscriptions_included_tables", "Tables included per subscription.",
                          no_samples),
                F.summary("subscriptions_rows_per_shape", "Rows per subscribed shape.",
                          no_samples),
                F.count("transactions_from_pg", "Transactions received from PostgreSQL."),
                F.count("transactions_received_from_clients",
                        "Transactions received from clients."),
                F.count("transactions_sent_to_clients", "Transactions sent to clients."),
            }),
        }),
    },
}
