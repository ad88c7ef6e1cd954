-- Synapse homeserver usage statistics ("phone home" stats): opt-in through report_stats in
-- homeserver.yaml; canonical JSON PUT every 3 hours of process uptime. Figures come from
-- where Synapse takes them: its config, its main database, its metrics and its process.
local F = require("phonehome.fields")

local DEFAULT_ENDPOINT = "https://matrix.org/report-usage-stats/push"
local DAY_MS = 86400000

local function dirname(path)
    return path:match("^(.*)/[^/]*$") or "."
end

-- A path homeserver.yaml gives: Synapse resolves a relative one from its working
-- directory, which phonehome cannot see; the directory of homeserver.yaml stands for it.
local function resolve(ctx, path, key)
    if type(path) ~= "string" or path == "" then
        error(key .. " in homeserver.yaml is not a path", 0)
    end
    if path:sub(1, 1) == "/" then return path end
    return dirname(ctx.settings.config) .. "/" .. path
end

local DEBIAN_CONFIG = "/etc/matrix-synapse/homeserver.yaml"

-- The files Synapse reads its config from, merged in order: the --config-path (-c)
-- arguments of the homeserver's process when it is found, they are absolute and they name
-- the setting config (else the operator points phonehome at another homeserver); else
-- config, with Debian's conf.d directory after the default one (Debian's unit passes both).
local function config_paths(ctx)
    local ok, paths = pcall(function()
        local _, long = ctx.process.flag("--config-path")
        local _, short = ctx.process.flag("-c")
        table.move(short, 1, #short, #long + 1, long)
        return long
    end)
    if ok and #paths > 0 then
        local names_config = false
        for _, path in ipairs(paths) do
            if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
                names_config = false
                break
            end
            names_config = names_config or path == ctx.settings.config
        end
        if names_config then return paths end
    end
    if ctx.settings.config == DEBIAN_CONFIG then
        return { DEBIAN_CONFIG, dirname(DEBIAN_CONFIG) .. "/conf.d" }
    end
    return ctx.settings.config
end

-- The main database's section: `database`, else the entry of `databases` holding the
-- main data store, else the SQLite file of `database_path`.
local function main_database(hs)
    if type(hs.database) == "table" then return hs.database end
    if type(hs.databases) == "table" then
        for _, db in pairs(hs.databases) do
            -- a database holds the main and state stores unless data_stores says otherwise
            local stores = type(db) == "table" and (db.data_stores or { "main" }) or {}
            for _, store in ipairs(stores) do
                if store == "main" then return db end
            end
        end
    end
    if hs.database_path ~= nil then
        return { name = "sqlite3", args = { database = hs.database_path } }
    end
    error("homeserver.yaml has no database section", 0)
end

local function engine(hs)
    local name = main_database(hs).name or "sqlite3"
    if name ~= "sqlite3" and name ~= "psycopg2" then
        error("database.name " .. tostring(name) .. " is neither sqlite3 nor psycopg2", 0)
    end
    return name
end

-- The database the sql sources open: the SQLite file, or the psycopg2 arguments as libpq
-- keywords (psycopg2 hands them to libpq; Synapse keeps cp_* for its own pool).
local function database(ctx)
    local hs = ctx.sources.config
    local args = main_database(hs).args or {}
    if engine(hs) == "sqlite3" then
        return resolve(ctx, args.database, "database.args.database")
    end
    local keywords = {}
    for k, v in pairs(args) do
        if type(k) == "string" and not k:match("^cp_") then
            keywords[k == "database" and "dbname" or k] =
                math.type(v) == "integer" and v or tostring(v)
        end
    end
    return keywords
end

-- The URL of the metrics Synapse serves when enable_metrics is on: a `metrics` listener,
-- an http listener with the metrics resource, or the older metrics_port; nil if none.
local function metrics_url(hs)
    if hs.enable_metrics ~= true then return nil end
    local function url(scheme, addresses, port)
        local host = "127.0.0.1"
        for _, a in ipairs(addresses) do
            if a == "::1" then host = "[::1]" end
            if a ~= "0.0.0.0" and a ~= "::" and a ~= "" and a ~= "127.0.0.1" and a ~= "::1" then
                host = a:find(":", 1, true) and ("[" .. a .. "]") or a
                break
            end
        end
        return scheme .. "://" .. host .. ":" .. port .. "/_synapse/metrics"
    end
    for _, l in ipairs(type(hs.listeners) == "table" and hs.listeners or {}) do
        local serves = type(l) == "table" and l.type == "metrics"
        if type(l) == "table" and l.type == "http" then
            for _, r in ipairs(type(l.resources) == "table" and l.resources or {}) do
                for _, n in ipairs(type(r) == "table" and r.names or {}) do
                    serves = serves or n == "metrics"
                end
            end
        end
        if serves and math.type(l.port) == "integer" then
            local addresses = {}
            for _, a in ipairs(type(l.bind_addresses) == "table" and l.bind_addresses or {}) do
                addresses[#addresses + 1] = a
            end
            addresses[#addresses + 1] = l.bind_address
            return url(l.type == "http" and l.tls and "https" or "http", addresses, l.port)
        end
    end
    if math.type(hs.metrics_port) == "integer" then
        return url("http", { hs.metrics_bind_host or "127.0.0.1" }, hs.metrics_port)
    end
    return nil
end

-- Synapse's size syntax: an integer, or digits with K, M, G or T (powers of 1024).
local function size(v)
    if math.type(v) == "integer" then return v end
    local digits, suffix = tostring(v):match("^%s*([+-]?%d+)%s*([KMGT]?)%s*$")
    if not digits then error("event_cache_size " .. tostring(v) .. " is not a size", 0) end
    local scale = { [""] = 1, K = 1024, M = 1024 ^ 2, G = 1024 ^ 3, T = 1024 ^ 4 }
    return math.tointeger(tonumber(digits) * scale[suffix])
end

local LEVELS = { CRITICAL = 50, FATAL = 50, ERROR = 40, WARNING = 30, WARN = 30, INFO = 20,
                 DEBUG = 10, NOTSET = 0 }
local LEVEL_NAMES = { [50] = "CRITICAL", [40] = "ERROR", [30] = "WARNING", [20] = "INFO",
                      [10] = "DEBUG", [0] = "NOTSET" }

local function level(v)
    if math.type(v) == "integer" then return v end
    local n = type(v) == "string" and LEVELS[v:upper()]
    if not n then error("log level " .. tostring(v) .. " is not one Python knows", 0) end
    return n
end

-- The effective level of the `synapse` logger, as Python's logging computes it from the
-- dictConfig Synapse loads: its own level, else the root's (WARNING unless set).
local function log_level(ctx)
    if ctx.sources.config.log_config == nil then return "INFO" end  -- Synapse's own set-up
    local lc = ctx.sources.logging
    local loggers = type(lc.loggers) == "table" and lc.loggers or {}
    local own = type(loggers.synapse) == "table" and loggers.synapse.level
    local n = own ~= nil and own ~= false and level(own) or 0
    if n == 0 then
        local root = type(lc.root) == "table" and lc.root.level
        n = (root ~= nil and root ~= false) and level(root) or 30
    end
    return LEVEL_NAMES[n] or ("Level " .. n)
end

local function python_version(ctx)
    if not metrics_url(ctx.sources.config) then return nil end
    local info = ctx.sources.metrics:series("python_info")[1]
    if not info then error("the metrics hold no python_info", 0) end
    local l = info.labels
    return l.major .. "." .. l.minor .. "." .. l.patchlevel
end

-- server_name, from homeserver.yaml unless given; Synapse refuses to start without it, so
-- a missing one is said.
local function homeserver(ctx)
    if ctx.settings.server_name then return ctx.settings.server_name end
    local _ = ctx.sources.config  -- if the file itself could not be read, that is the cause
    error("server_name is in none of the homeserver's config files: give it with --set "
        .. "synapse.server_name=NAME", 0)
end

-- The homeserver's process as found (--pid, --pidfile, else the oldest with Synapse's
-- command line), checked against the pid_file of homeserver.yaml when that can be read:
-- with several homeservers on a host, the oldest need not be this one.
local function homeserver_process(ctx)
    local ok, pid = pcall(function() return tonumber(ctx.sources.pid_file:match("%d+")) end)
    local p = ctx.process
    if ok and pid and pid ~= p.pid then
        error("the process found (pid " .. p.pid .. ") is not the homeserver of "
            .. ctx.settings.config .. ", whose pid_file holds " .. pid .. ": give its "
            .. "pid_file with --pidfile", 0)
    end
    return p
end

local function cache_factor(ctx)
    local caches = ctx.sources.config.caches
    local v = type(caches) == "table" and caches.global_factor
    if v == nil or v == false then return 0.5 end
    if type(v) ~= "number" then error("caches.global_factor must be a number", 0) end
    return v
end

-- Where the process measurement of the previous report allows it, the window since then;
-- else since the process started.
local function cpu_average(ctx)
    local now, before = homeserver_process(ctx), ctx.previous_process
    if before and before.pid == now.pid
        and math.abs(before.start_time - now.start_time) < 1 then
        local cpu, wall = now.user_cpu + now.system_cpu - before.cpu, ctx.now - before.time
        if cpu <= 0 or wall <= 0 then return 0 end
        return math.floor(cpu / wall * 100)
    end
    return math.floor(now.cpu_percent)
end

-- Synapse's queries (synapse/storage/databases/main/metrics.py, registration.py, room.py),
-- the same text on SQLite and PostgreSQL; times bound as BIGINT so that PostgreSQL does
-- not read the milliseconds as int4.
local R30_WINDOW = "timestamp > (CAST(:now_s AS BIGINT) - 5184000) * 1000 "
    .. "AND timestamp < (CAST(:now_s AS BIGINT) + 86400) * 1000"
local LIKE = function(word) return "LOWER(user_agent) LIKE '%" .. word .. "%'" end
local queries = {
    total_users = "SELECT COUNT(*) AS n FROM users",
    nonbridged_users = "SELECT COUNT(*) AS n FROM users WHERE appservice_id IS NULL",
    daily_user_type = "SELECT user_type, COUNT(*) AS n FROM (SELECT CASE "
        .. "WHEN is_guest = 0 AND appservice_id IS NULL THEN 'native' "
        .. "WHEN is_guest = 1 AND appservice_id IS NULL THEN 'guest' "
        .. "WHEN is_guest = 0 AND appservice_id IS NOT NULL THEN 'bridged' END AS user_type "
        .. "FROM users WHERE creation_ts > CAST(:now_s AS BIGINT) - 86400) AS t "
        .. "GROUP BY user_type",
    room_count = "SELECT COUNT(*) AS n FROM rooms",
    daily_users = "SELECT COUNT(*) AS n FROM (SELECT user_id FROM user_ips "
        .. "WHERE last_seen > CAST(:now_ms AS BIGINT) - " .. DAY_MS .. " GROUP BY user_id) u",
    monthly_users = "SELECT COUNT(*) AS n FROM (SELECT user_id FROM user_ips "
        .. "WHERE last_seen > CAST(:now_ms AS BIGINT) - " .. 30 * DAY_MS
        .. " GROUP BY user_id) u",
    r30v2_clients = "SELECT client_type, COUNT(client_type) AS n FROM (SELECT user_id, CASE "
        .. "WHEN " .. LIKE("riot") .. " OR " .. LIKE("element") .. " THEN CASE "
        .. "WHEN " .. LIKE("electron") .. " THEN 'electron' "
        .. "WHEN " .. LIKE("android") .. " THEN 'android' "
        .. "WHEN " .. LIKE("ios") .. " THEN 'ios' ELSE 'unknown' END "
        .. "WHEN " .. LIKE("mozilla") .. " OR " .. LIKE("gecko") .. " THEN 'web' "
        .. "ELSE 'unknown' END AS client_type FROM user_daily_visits WHERE " .. R30_WINDOW
        .. " GROUP BY user_id, client_type HAVING MAX(timestamp) - MIN(timestamp) > "
        .. 30 * DAY_MS .. ") AS temp GROUP BY client_type",
    r30v2_all = "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM user_daily_visits WHERE "
        .. R30_WINDOW .. " GROUP BY user_id HAVING MAX(timestamp) - MIN(timestamp) > "
        .. 30 * DAY_MS .. ") AS r30_users",
    -- the stream ordering of the first event received in the last day, by Synapse's binary
    -- search over stream_ordering (received_ts has no index); the counts start after it
    stream_ordering_day_ago = "WITH RECURSIVE search(lo, hi) AS ("
        .. "SELECT CAST(0 AS BIGINT), COALESCE((SELECT MAX(stream_ordering) FROM events), -1) + 1"
        .. " UNION ALL SELECT "
        .. "CASE WHEN (SELECT received_ts FROM events WHERE stream_ordering <= (lo + hi) / 2 "
        .. "ORDER BY stream_ordering DESC LIMIT 1) >= CAST(:now_ms AS BIGINT) - " .. DAY_MS
        .. " THEN lo ELSE (lo + hi) / 2 + 1 END, "
        .. "CASE WHEN (SELECT received_ts FROM events WHERE stream_ordering <= (lo + hi) / 2 "
        .. "ORDER BY stream_ordering DESC LIMIT 1) >= CAST(:now_ms AS BIGINT) - " .. DAY_MS
        .. " THEN (lo + hi) / 2 ELSE hi END FROM search WHERE lo < hi) "
        .. "SELECT hi AS stream_ordering FROM search WHERE lo >= hi",
}

-- The daily event counts, past the stream ordering found above.
local function events_query(what, etype, sent)
    return "SELECT " .. what .. " AS n FROM events WHERE type = '" .. etype .. "'"
        .. (sent and " AND sender LIKE '%:' || :server_name" or "")
        .. " AND stream_ordering > :stream_ordering_day_ago"
end
local event_queries = {
    daily_messages = events_query("COUNT(*)", "m.room.message"),
    daily_sent_messages = events_query("COUNT(*)", "m.room.message", true),
    daily_active_rooms = events_query("COUNT(DISTINCT room_id)", "m.room.message"),
    daily_e2ee_messages = events_query("COUNT(*)", "m.room.encrypted"),
    daily_sent_e2ee_messages = events_query("COUNT(*)", "m.room.encrypted", true),
    daily_active_e2ee_rooms = events_query("COUNT(DISTINCT room_id)", "m.room.encrypted"),
}

-- The count of query q of a source: its one row, or the row of a group (key = group).
local function first(source, q)
    return function(ctx) return ctx.sources[source][q][1].n end
end

local function group(q, key, name)
    return function(ctx)
        for _, row in ipairs(ctx.sources.db[q]) do
            if row[key] == name then return row.n end
        end
        return 0  -- Synapse starts every group at 0: no row means none counted
    end
end

local RETAINED = " Retained: seen in user_daily_visits over the last 60 days, first and last "
    .. "visit more than 30 days apart."

return {
    name = "synapse",
    version = "1.0.0",
    description = "Usage statistics of a Synapse Matrix homeserver: size, activity, retention "
        .. "and the resources the server process uses.",
    endpoint = DEFAULT_ENDPOINT,
    method = "PUT",
    canonical = true,
    -- Synapse's own PUT: no retry, its Accept, a 2xx counts only with a JSON body, a
    -- failed report dropped; report_stats_endpoint of homeserver.yaml is where it goes
    delivery = { retries = 0, timeout = "60s", log_report = true, success = "json",
                 drop_failed = true, headers = { "Accept: application/json" },
                 user_agent = "Synapse/{synapse_version}",
                 endpoint_setting = "report_stats_endpoint" },
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
    sources = {
        { name = "config", kind = "yaml",
          description = "homeserver.yaml and the files merged after it, as Synapse reads "
              .. "them: the homeserver process's --config-path (-c) files and directories "
              .. "(their *.yaml) when they include the setting config, else config alone, "
              .. "with Debian's conf.d after the default one. Keys read: report_stats, "
              .. "report_stats_endpoint, server_name, server_context, caches.global_factor, "
              .. "event_cache_size, database.name and database.args (else databases or "
              .. "database_path), log_config, enable_metrics, listeners (type, port, "
              .. "bind_addresses, tls, resources) and metrics_port.",
          path = config_paths },
        { name = "logging", kind = "yaml",
          description = "The logging configuration log_config names (relative paths from "
              .. "the directory of homeserver.yaml). Keys read: loggers.synapse.level, "
              .. "root.level.",
          path = function(ctx)
              local path = ctx.sources.config.log_config
              if path == nil then error("homeserver.yaml sets no log_config", 0) end
              return resolve(ctx, path, "log_config")
          end },
        { name = "pid_file", kind = "file",
          description = "Synapse's pid_file (homeserver.yaml), when phonehome can read it: "
              .. "the process measured must be the one it names.",
          path = function(ctx)
              local path = ctx.sources.config.pid_file
              if path == nil then error("homeserver.yaml sets no pid_file", 0) end
              return resolve(ctx, path, "pid_file")
          end },
        { name = "db", kind = "sql",
          description = "Synapse's main database, as database.name and database.args give "
              .. "it: the SQLite file, or PostgreSQL with the psycopg2 arguments (database "
              .. "as dbname, cp_* left out).",
          database = database, queries = queries },
        { name = "events", kind = "sql",
          description = "The same database: the events after the stream ordering of the "
              .. "first one received in the last day (from source db); sent ones are by "
              .. "senders of server_name.",
          database = database, queries = event_queries,
          params = function(ctx)
              return { stream_ordering_day_ago =
                           ctx.sources.db.stream_ordering_day_ago[1].stream_ordering,
                       server_name = ctx.settings.server_name or error("no server_name", 0) }
          end },
        { name = "metrics", kind = "prometheus",
          description = "Synapse's metrics at /_synapse/metrics on the listener "
              .. "homeserver.yaml enables (enable_metrics with a metrics listener, an http "
              .. "listener with the metrics resource, or metrics_port), on the loopback "
              .. "address when it binds all addresses. Series read: python_info.",
          url = function(ctx)
              return metrics_url(ctx.sources.config)
                  or error("homeserver.yaml enables no metrics listener", 0)
          end },
    },
    -- found by --pid, --pidfile or this command line: a pid file cannot come from a source
    process = { command = "synapse%.app%.homeserver", flags = { "--config-path", "-c" } },
    settings = {
        { name = "config", type = "string", default = DEBIAN_CONFIG,
          description = "Path of Synapse's homeserver.yaml. The files Synapse merges after "
              .. "it are read too: the homeserver process's other --config-path arguments, "
              .. "else Debian's conf.d/*.yaml beside the default. The homeserver process is "
              .. "--pidfile (Synapse's pid_file) or the oldest process running "
              .. "synapse.app.homeserver." },
        { name = "report_stats", type = "bool", source = "config", key = "report_stats",
          description = "Synapse's opt-in: statistics are built and sent only when true." },
        { name = "server_name", type = "string", source = "config", key = "server_name",
          description = "The homeserver's server_name." },
        { name = "server_context", type = "string", source = "config", key = "server_context",
          description = "Synapse's server_context: a label grouping several homeservers." },
        { name = "report_stats_endpoint", type = "string", source = "config",
          key = "report_stats_endpoint",
          description = "Where Synapse sends its statistics instead of matrix.org's; the "
              .. "setting endpoint wins over it." },
    },
    -- Every figure but the time is null, with a log line naming the field and the cause,
    -- when phonehome cannot read where Synapse takes it from.
    fields = {
        F.value("homeserver", "string", "server_name of homeserver.yaml, or the setting "
            .. "server_name.", homeserver, { source = "config", null = true }),
        F.value("memory_rss", "int", "Peak resident memory of the homeserver process "
            .. "(VmHWM, as getrusage's ru_maxrss).",
            function(ctx) return homeserver_process(ctx).peak_rss // 1024 end,
            { unit = "KiB", null = true, source = "pid_file" }),
        F.value("cpu_average", "int", "CPU time the homeserver process used since the previous "
            .. "report (or since it started), as a percentage of one core, rounded down.",
            cpu_average, { unit = "% of one core", null = true, source = "pid_file" }),
        { name = "server_context", type = "string", setting = "server_context", null = true,
          description = "server_context of homeserver.yaml; null when unset." },
        F.value("timestamp", "int", "When the report was built.",
            function(ctx) return math.floor(ctx.now) end, { unit = "seconds since the epoch" }),
        F.value("uptime_seconds", "int", "Time since the homeserver process started.",
            function(ctx) return math.max(0, math.floor(homeserver_process(ctx).uptime)) end,
            { unit = "seconds", null = true, source = "pid_file" }),
        F.value("python_version", "string", "The homeserver's Python version (major.minor.micro "
            .. "of the python_info series of its metrics); null when homeserver.yaml enables "
            .. "no metrics listener, as nothing else outside Synapse tells it.", python_version,
            { sources = { "config", "metrics" }, null = true }),
        F.count("total_users", "Registered users (all rows of users).",
                { source = "db", value = first("db", "total_users"), null = true }),
        F.count("total_nonbridged_users", "Users not made by an application service "
            .. "(appservice_id IS NULL).",
            { source = "db", value = first("db", "nonbridged_users"), null = true }),
        F.count("daily_user_type_native", "Users registered in the last 24 hours (creation_ts), "
            .. "neither guests nor made by an application service.",
            { source = "db", value = group("daily_user_type", "user_type", "native"),
              null = true }),
        F.count("daily_user_type_guest", "Guest users (is_guest) registered in the last 24 "
            .. "hours.", { source = "db", value = group("daily_user_type", "user_type", "guest"),
                           null = true }),
        F.count("daily_user_type_bridged", "Users an application service (appservice_id) "
            .. "registered in the last 24 hours.",
            { source = "db", value = group("daily_user_type", "user_type", "bridged"),
              null = true }),
        F.count("total_room_count", "Rows of rooms.",
                { source = "db", value = first("db", "room_count"), null = true }),
        F.count("daily_active_users", "Distinct users of user_ips seen (last_seen) in the last "
            .. "24 hours.", { source = "db", value = first("db", "daily_users"), null = true }),
        F.count("monthly_active_users", "Distinct users of user_ips seen (last_seen) in the "
            .. "last 30 days.",
            { source = "db", value = first("db", "monthly_users"), null = true }),
        F.count("daily_active_rooms", "Rooms with an m.room.message event in the last day "
            .. "(after the first event received in it).",
            { source = "events", value = first("events", "daily_active_rooms"), null = true }),
        F.count("daily_active_e2ee_rooms", "Rooms with an m.room.encrypted event in the last "
            .. "day.", { source = "events", value = first("events", "daily_active_e2ee_rooms"),
                         null = true }),
        F.count("daily_messages", "m.room.message events in the last day.",
                { source = "events", value = first("events", "daily_messages"), null = true }),
        F.count("daily_e2ee_messages", "m.room.encrypted events in the last day.",
                { source = "events", value = first("events", "daily_e2ee_messages"),
                  null = true }),
        F.count("daily_sent_messages", "m.room.message events in the last day whose sender "
            .. "ends in :server_name.",
            { source = "events", value = first("events", "daily_sent_messages"), null = true }),
        F.count("daily_sent_e2ee_messages", "m.room.encrypted events in the last day whose "
            .. "sender ends in :server_name.",
            { source = "events", value = first("events", "daily_sent_e2ee_messages"),
              null = true }),
        F.count("r30v2_users_all", "Any client." .. RETAINED,
                { source = "db", value = first("db", "r30v2_all"), null = true }),
        F.count("r30v2_users_android", "Element or Riot on Android." .. RETAINED,
                { source = "db", value = group("r30v2_clients", "client_type", "android"),
                  null = true }),
        F.count("r30v2_users_ios", "Element or Riot on iOS." .. RETAINED,
                { source = "db", value = group("r30v2_clients", "client_type", "ios"),
                  null = true }),
        F.count("r30v2_users_electron", "Element or Riot desktop (Electron)." .. RETAINED,
                { source = "db", value = group("r30v2_clients", "client_type", "electron"),
                  null = true }),
        F.count("r30v2_users_web", "Web browsers (Mozilla or Gecko in the user agent)."
            .. RETAINED, { source = "db", value = group("r30v2_clients", "client_type", "web"),
                           null = true }),
        F.value("cache_factor", "number", "caches.global_factor of homeserver.yaml (0.5 "
            .. "unless set), integer or float as written.", cache_factor,
            { source = "config", null = true }),
        F.value("event_cache_size", "int", "event_cache_size of homeserver.yaml in entries, "
            .. "Synapse's size syntax read (\"10K\" = 10240, the default).",
            function(ctx) return size(ctx.sources.config.event_cache_size or "10K") end,
            { source = "config", null = true }),
        F.value("database_engine", "string", "database.name of homeserver.yaml: psycopg2 "
            .. "(PostgreSQL) or sqlite3.", function(ctx) return engine(ctx.sources.config) end,
            { source = "config", null = true }),
        F.value("database_server_version", "string", "Version of the main database: "
            .. "PostgreSQL's server_version_num as major.minor, or the SQLite library's.",
            function(ctx) return ctx.sources.db.version end, { source = "db", null = true }),
        F.value("log_level", "string", "Effective level of the synapse logger in the logging "
            .. "configuration log_config names (its own level, else the root's); INFO without "
            .. "log_config.", log_level, { sources = { "config", "logging" }, null = true }),
    },
}
