-- Synapse homeserver usage statistics ("phone home" stats): opt-in through the
-- report_stats setting; canonical JSON PUT every 3 hours of process uptime.

local F = require("phonehome.fields")

local function cpu_average(ctx)
    local now, before = ctx.process, ctx.previous_process
    -- the same process as at the previous report: the window since then
    if before and before.pid == now.pid
        and math.abs(before.start_time - now.start_time) < 1 then
        local cpu, wall = now.user_cpu + now.system_cpu - before.cpu, ctx.now - before.time
        if cpu <= 0 or wall <= 0 then return 0 end
        return math.floor(cpu / wall * 100)
    end
    return math.floor(now.cpu_percent)
end

return {
    name = "synapse",
    version = "1.0.0",
    description = "Usage statistics of a Synapse Matrix homeserver: size, activity, retention "
        .. "and the resources the server process uses.",
    endpoint = "https://matrix.org/report-usage-stats/push",
    method = "PUT",
    canonical = true,
    delivery = { retries = 0, timeout = "60s", log_report = true },
    schedule = { first = "300s", interval = "3h", anchor = "start" },
    optout = {
        default = "off",
        settings = { { name = "report_stats", on = { true }, off = { false } } },
    },
    disclosure = {
        on = "This homeserver reports anonymous usage statistics to the configured endpoint "
            .. "(report_stats: true). Set report_stats: false to stop.",
        off = "This homeserver does not report usage statistics (report_stats is not true).",
    },
    settings = {
        { name = "report_stats", type = "bool",
          description = "Synapse's report_stats: true to send statistics; nothing is sent "
              .. "otherwise." },
        { name = "server_name", type = "string", default = "localhost",
          description = "The homeserver's server_name." },
    },
    fields = {
        { name = "homeserver", type = "string", setting = "server_name",
          description = "The server name of the homeserver." },
        F.value("memory_rss", "int",
                "Peak resident memory of the server process (getrusage ru_maxrss).",
                function(ctx) return ctx.process.peak_rss // 1024 end, { unit = "KiB" }),
        F.value("cpu_average", "int",
                "CPU time used since the previous report (or since start), as a percentage of "
                .. "one core, rounded down.",
                cpu_average, { unit = "% of one core" }),
        F.setting("server_context", "string",
                  "A free-form label that groups the statistics of several homeservers."),
        F.value("timestamp", "int", "When the report was built.",
                function(ctx) return math.floor(ctx.now) end, { unit = "seconds since the epoch" }),
        F.value("uptime_seconds", "int", "Time since the homeserver started.",
                function(ctx) return math.floor(ctx.process.uptime) end, { unit = "seconds" }),
        F.setting("python_version", "string",
                  "The Python version the homeserver runs on, e.g. \"3.11.2\"."),
        F.count("total_users", "Registered users."),
        F.count("total_nonbridged_users",
                "Registered users, less those made by application services."),
        F.count("daily_user_type_native", "Native users registered in the last 24 hours."),
        F.count("daily_user_type_guest", "Guest users registered in the last 24 hours."),
        F.count("daily_user_type_bridged", "Users registered by application services in the last "
            .. "24 hours."),
        F.count("total_room_count", "Rooms on the homeserver."),
        F.count("daily_active_users", "Distinct users active in the last 24 hours."),
        F.count("monthly_active_users", "Distinct users active in the last 30 days."),
        F.count("daily_active_rooms",
                "Rooms with an m.room.message event in the last 24 hours."),
        F.count("daily_active_e2ee_rooms", "Rooms with an m.room.encrypted event in the last 24 "
            .. "hours."),
        F.count("daily_messages", "m.room.message events seen in the last 24 hours."),
        F.count("daily_e2ee_messages", "m.room.encrypted events seen in the last 24 hours."),
        F.count("daily_sent_messages", "m.room.message events sent by local users in the last 24 "
            .. "hours."),
        F.count("daily_sent_e2ee_messages",
                "m.room.encrypted events sent by local users in the last 24 hours."),
        F.count("r30v2_users_all", "Users retained over 30 days (seen twice, more than 30 days "
            .. "apart, within the last 60), any client."),
        F.count("r30v2_users_android", "Retained users on Element/Riot for Android."),
        F.count("r30v2_users_ios", "Retained users on Element/Riot for iOS."),
        F.count("r30v2_users_electron", "Retained users on Element/Riot desktop."),
        F.count("r30v2_users_web", "Retained users in a web browser."),
        F.setting("cache_factor", "int", "The configured global cache factor.", 1),
        F.setting("event_cache_size", "int", "The configured event cache size.", 10000),
        F.setting("database_engine", "string",
                  "The database driver: psycopg2 (PostgreSQL) or sqlite3.", "sqlite3"),
        F.setting("database_server_version", "string",
                  "Version of the database server, e.g. \"15.4\" or \"3.40.1\"."),
        F.setting("log_level", "string", "The log level in use: DEBUG, INFO, WARNING, ERROR, ...",
                  "INFO"),
    },
}
