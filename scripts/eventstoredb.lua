-- EventStoreDB (23.10 – 24.10) usage telemetry: one JSON document a day, the first an
-- hour after start; opting out still builds and logs it, but sends nothing. Every figure
-- comes from the node: its HTTP API, its database directory, its config file, its process.
local F = require("phonehome.fields")

-- The node options the report needs, with the node's defaults on Linux.
local DEFAULTS = {
    ClusterSize = "1", EnableAtomPubOverHttp = "False", EnableExternalTcp = "False",
    Insecure = "False", RunProjections = "None", ChunkSize = "268435456",
    Db = "/var/lib/eventstore",
}
local DEFAULT_CONFIG = "/etc/eventstore/eventstore.conf"

-- How the node spells an option on its command line (--cluster-size) and in its
-- environment (EVENTSTORE_CLUSTER_SIZE).
local function flag_of(name)
    return "--" .. name:gsub("(%l)(%u)", "%1-%2"):lower()
end
local function env_of(name)
    return "EVENTSTORE_" .. name:gsub("(%l)(%u)", "%1_%2"):upper()
end

local process_env = { "DOTNET_RUNNING_IN_CONTAINER", "EVENTSTORE_CONFIG" }
local process_flags = { "--config" }
for _, name in ipairs({ "ClusterSize", "EnableAtomPubOverHttp", "EnableExternalTcp",
                        "Insecure", "RunProjections", "ChunkSize", "Db" }) do
    process_env[#process_env + 1] = env_of(name)
    process_flags[#process_flags + 1] = flag_of(name)
end

-- .NET's names of the node's states (VNodeState), by the lower-case form /info gives.
local STATES = {}
for _, s in ipairs({ "Initializing", "DiscoverLeader", "Unknown", "PreReplica", "CatchingUp",
                     "Clone", "Follower", "PreLeader", "Leader", "Manager", "ShuttingDown",
                     "Shutdown", "ReadOnlyLeaderless", "PreReadOnlyReplica", "ReadOnlyReplica",
                     "ResigningLeader" }) do
    STATES[s:lower()] = s
end

-- A source's value, or nil when it could not be read. A source not read yet is no
-- failure: its error goes on, so that the host reads it first.
local function read(ctx, name)
    local ok, v = pcall(function() return ctx.sources[name] end)
    if ok then return v end
    if type(v) ~= "string" or v:find("without declaring it", 1, true) then error(v, 0) end
    return nil
end

-- Whether the node's process is known (--pid, --pidfile, or found by its command line).
local function has_process(ctx)
    return (pcall(function() return ctx.process.pid end))
end

-- One reading of the node's process (how = "env" or "flag"), nil when it is unknown.
local function from_process(ctx, how, name)
    local ok, v = pcall(function() return ctx.process[how](name) end)
    if ok then return v end
    return nil
end

-- Whether the node is not running here: no process of it, and nothing listening at its
-- address. Its figures are then null, without a warning each.
local function node_down(ctx)
    if has_process(ctx) then return false end
    local ok, err = pcall(function() return ctx.sources.info end)
    return not ok and tostring(err):find("Couldn't connect to server", 1, true) ~= nil
end

-- The config file the operator or the node's process names, if any.
local function config_given(ctx)
    local given = ctx.settings.config or from_process(ctx, "flag", "--config")
    if type(given) ~= "string" then given = from_process(ctx, "env", "EVENTSTORE_CONFIG") end
    return given
end

-- The node's config file: the one named, else the node's default.
local function config_path(ctx)
    return config_given(ctx) or DEFAULT_CONFIG
end

-- An option as the node resolves it: its command line over its environment over its
-- config file (keys in any case) over its default.
local function configured(ctx, name)
    local v = from_process(ctx, "flag", flag_of(name))
    if v == true then return "true" end
    if v ~= nil then return v end
    v = from_process(ctx, "env", env_of(name))
    if v ~= nil then return v end
    -- a config file named by the operator or the node must be there; the default may not
    local conf = config_given(ctx) and ctx.sources.config or read(ctx, "config")
    if type(conf) == "table" then
        for k, x in pairs(conf) do
            if type(k) == "string" and k:lower() == name:lower() and type(x) ~= "table" then
                return tostring(x)
            end
        end
    end
    return DEFAULTS[name]
end

-- An option's value as the node runs with it: /info/options says, else as it resolves it.
local function option(ctx, name)
    local list = read(ctx, "options")
    if type(list) == "table" then
        for _, o in ipairs(list) do
            if type(o) == "table" and o.name == name and o.value ~= nil then
                return tostring(o.value)
            end
        end
    end
    return configured(ctx, name)
end

local function int_option(ctx, name)
    local v = option(ctx, name)
    return math.tointeger(tonumber(v)) or error(name .. " is not a number: " .. v, 0)
end

local function bool_option(ctx, name)
    local v = option(ctx, name):lower():match("^%s*(.-)%s*$")
    if v == "true" or v == "false" then return v == "true" end
    error(name .. " is not true or false: " .. v, 0)
end

local PROJECTION_TYPES = { none = "None", system = "System", all = "All",
                           ["0"] = "None", ["1"] = "System", ["2"] = "All" }

local function projection_type(ctx, name)
    local v = option(ctx, name)
    return PROJECTION_TYPES[v:lower()] or error(name .. " is not None, System or All: " .. v, 0)
end

local function db(ctx)
    return ctx.settings.db or option(ctx, "Db")
end

local function base_url(ctx)
    return (ctx.settings.url:gsub("/+$", ""))
end

local function credentials(ctx)
    local s = ctx.settings
    if s.password == nil and s.password_file == nil then return nil end
    return { basic = { user = s.username, password = s.password,
                       password_file = s.password_file } }
end

-- A GET of the node's HTTP API, with the operator's credentials.
local function api(name, path, description)
    return { name = name, kind = "http", description = "GET <url>" .. path .. ": " .. description,
             url = function(ctx) return base_url(ctx) .. path end, auth = credentials,
             ca_file = function(ctx) return ctx.settings.node_ca_file end }
end

local function members(gossip)
    if type(gossip) ~= "table" or type(gossip.members) ~= "table" then
        error("/gossip has no members list", 0)
    end
    return gossip.members
end

-- This node's entry in /gossip: the member at the HTTP address the answer comes from.
local function this_node(gossip)
    local list = members(gossip)
    for _, m in ipairs(list) do
        if m.httpEndPointIp == gossip.serverIp and m.httpEndPointPort == gossip.serverPort then
            return m
        end
    end
    if #list == 1 then return list[1] end
    error("no member of /gossip is this node (" .. tostring(gossip.serverIp) .. ":"
        .. tostring(gossip.serverPort) .. ")", 0)
end

-- The continuous projections of /projections/any, counted as the node counts them:
-- standard ones are named $..., running ones have "Running" in their status.
local function projections(ctx)
    local list = ctx.sources.projections.projections
    if type(list) ~= "table" then error("/projections/any has no projections list", 0) end
    local n = { custom = 0, standard = 0, customRunning = 0, standardRunning = 0 }
    for _, p in ipairs(list) do
        if p.mode == "Continuous" then
            local kind = tostring(p.name):sub(1, 1) == "$" and "standard" or "custom"
            n[kind] = n[kind] + 1
            if tostring(p.status):find("Running", 1, true) then
                n[kind .. "Running"] = n[kind .. "Running"] + 1
            end
        end
    end
    return n
end

-- The id of the epoch record that opens chunk 0: past the 128-byte chunk header, a record
-- framed by its int32 length; a system record (type 2, version 0) at log position 0, its
-- tick count, kind 1 (epoch), serialization 2 (JSON), 8 reserved bytes, then its
-- int32-counted JSON, whose epochId is the database's first epoch.
local function first_epoch_id(bytes)
    if #bytes < 164 or bytes:byte(1) ~= 2 then error("not a chunk file", 0) end
    local _, rtype, version, position, at = string.unpack("<i4BBi8", bytes, 129)
    if rtype ~= 2 or version ~= 0 or position ~= 0 then
        error("chunk 0 does not open with a system record", 0)
    end
    local _, kind, serialization, _, n, data = string.unpack("<i8BBi8i4", bytes, at)
    if kind ~= 1 or serialization ~= 2 then error("chunk 0 does not open with an epoch", 0) end
    if n < 0 or data + n - 1 > #bytes then error("the epoch record is cut short", 0) end
    local id = bytes:sub(data, data + n - 1)
        :match('"[Ee][Pp][Oo][Cc][Hh][Ii][Dd]"%s*:%s*"(%x+%-%x+%-%x+%-%x+%-%x+)"')
    return id and id:lower() or error("the epoch record has no epochId", 0)
end

-- Seconds since 1970 of a UTC time in .NET's round-trip format (2024-05-01T10:00:00.1234567Z).
local function utc_seconds(s)
    local y, mo, d, h, mi, sec, frac =
        tostring(s):match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$")
    if not y then error("not a UTC time: " .. tostring(s), 0) end
    y, mo = tonumber(y), tonumber(mo)
    y = mo <= 2 and y - 1 or y
    local era, mp = y // 400, (mo + 9) % 12
    local yoe = y - era * 400
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * mp + 2) // 5 + tonumber(d) - 1
    local days = era * 146097 + doe - 719468
    return days * 86400 + h * 3600 + mi * 60 + sec + (frac ~= "" and tonumber("0." .. frac) or 0)
end

-- A .NET TimeSpan in its constant format: [d.]hh:mm:ss[.fffffff]
local function timespan(seconds)
    local ticks = math.floor(seconds * 1e7 + 0.5)
    local s = ticks // 10000000
    local frac = ticks % 10000000
    local d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    local out = string.format("%02d:%02d:%02d", h, m, s % 60)
    if d > 0 then out = d .. "." .. out end
    if frac > 0 then out = out .. string.format(".%07d", frac) end
    return out
end

-- .NET's names for processor architectures (System.Runtime.InteropServices.Architecture)
local dotnet_arch = { x86_64 = "X64", arm64 = "Arm64", x86 = "X86", arm = "Arm",
                      s390x = "S390x", loongarch64 = "LoongArch64", ppc64le = "Ppc64le" }

-- A figure the node gives, read by fn from sources (and /info, which tells whether the
-- node runs): null when the node is not running. setting: the name of a setting that,
-- when given, is reported instead.
local function from_node(kind, name, description, fn, sources, opts)
    opts = opts or {}
    local setting = opts.setting
    opts.setting = nil
    local list = { "info" }
    for _, s in ipairs(sources) do
        if s ~= "info" then list[#list + 1] = s end
    end
    opts.sources, opts.null = list, true
    description = description .. " Null when the node is not running or this cannot be read"
        .. (sources[1] and "." or " (its process is not found).")
    return F.value(name, kind, description, function(ctx)
        if setting and ctx.settings[setting] ~= nil then return ctx.settings[setting] end
        if node_down(ctx) then return nil end
        return fn(ctx)
    end, opts)
end

-- An option of the node, in the report's configuration object.
local function configuration(kind, name, option_name, description, read_option)
    return from_node(kind, name, description .. " (" .. option_name .. ").", function(ctx)
        return read_option(ctx, option_name)
    end, { "options", "config" }, { setting = "configuration." .. name })
end

local function count(name, description, key)
    return from_node("int", name, description, function(ctx) return projections(ctx)[key] end,
                     { "projections" })
end

local function total(name, description, a, b)
    return from_node("int", name, description, function(ctx)
        local n = projections(ctx)
        return n[a] + n[b]
    end, { "projections" })
end

local function node_option_setting(name, kind, option_name)
    return { name = "configuration." .. name, type = kind,
             description = "Reported as configuration." .. name .. " instead of the node's "
                 .. option_name .. ", when given." }
end

return {
    name = "eventstoredb",
    version = "2.0.0",
    description = "Anonymous usage telemetry of an EventStoreDB node: version, cluster and "
        .. "machine size, enabled protocols, projections and persistent subscriptions, read "
        .. "from the node's HTTP API, database directory, config file and process.",
    endpoint = "https://eventstore.com/telemetry",
    method = "POST",
    delivery = { retries = 0 },
    schedule = { first = "1h", send_delay = "10s", interval = "24h", anchor = "previous" },
    -- the database's first epoch, as the node reads it; phonehome's own id when unreadable
    identity = { field = "database.firstEpochId", sources = { "chunk0", "info" },
                 value = function(ctx)
                     local ok, id = pcall(function()
                         return first_epoch_id(ctx.sources.chunk0)
                     end)
                     if ok then return id end
                     -- quietly when there is no node, or no source was read (a dry build)
                     if node_down(ctx) or tostring(id):find("was not read", 1, true) then
                         return ctx.instance_id
                     end
                     error(id, 0)
                 end },
    process = { command = "^%S*[Ee]vent[Ss]tore%.?[Cd]", env = process_env,
                flags = process_flags },
    sources = {
        { name = "config", kind = "yaml", path = config_path,
          description = "The node's config file (YAML; see the config setting): its keys "
              .. "ClusterSize, EnableAtomPubOverHttp, EnableExternalTcp, Insecure, "
              .. "RunProjections, ChunkSize and Db, in any case." },
        api("info", "/info", "esVersion and state."),
        api("options", "/info/options", "each option's name and value (an admin or ops user "
            .. "may read it): ClusterSize, EnableAtomPubOverHttp, EnableExternalTcp, Insecure, "
            .. "RunProjections, ChunkSize, Db."),
        api("gossip", "/gossip", "serverIp, serverPort and each member's instanceId, state, "
            .. "isAlive, httpEndPointIp, httpEndPointPort, epochNumber, writerCheckpoint and "
            .. "esVersion."),
        api("projections", "/projections/any", "each projection's name, mode and status."),
        api("subscriptions", "/subscriptions", "how many persistent subscriptions it lists."),
        api("stats", "/stats", "proc.startTime, when the node's process is not found."),
        { name = "writer", kind = "file", format = "int64le",
          description = "<db>/writer.chk: the writer checkpoint, the bytes written to the "
              .. "transaction log (a little-endian int64).",
          path = function(ctx) return db(ctx) .. "/writer.chk" end },
        { name = "chunk0", kind = "file", format = "bytes", offset = 0, length = 4096,
          description = "The first 4 KiB of <db>/chunk-000000.000000: the chunk header and the "
              .. "first epoch record, whose id is the identity (database.firstEpochId).",
          path = function(ctx) return db(ctx) .. "/chunk-000000.000000" end },
    },
    optout = {
        default = "on",
        env = { { name = "EVENTSTORE_TELEMETRY_OPTOUT", off = { "true" } } },
        flags = { { name = "--telemetry-optout" } },
        build_when_off = true,
    },
    disclosure = {
        on = "Telemetry\n---------\n"
            .. "EventStoreDB collects usage data in order to improve your experience. "
            .. "The data is anonymous and collected by Event Store Ltd.\n"
            .. "You can opt out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT "
            .. "environment variable to true.\n"
            .. "For more information visit https://eventstore.com/telemetry",
        off = "Telemetry\n---------\n"
            .. "EventStoreDB collects usage data in order to improve your experience. "
            .. "The data is anonymous and collected by EventStore Ltd.\n"
            .. "You have opted out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT "
            .. "environment variable to true.\n"
            .. "For more information visit https://eventstore.com/telemetry",
    },
    settings = {
        { name = "url", type = "string", default = "http://127.0.0.1:2113",
          description = "The node's HTTP address (https:// for a secure node)." },
        { name = "username", type = "string", default = "admin",
          description = "The user phonehome signs in as, with password or password_file; "
              .. "/info/options, /projections/any and /subscriptions need one (admin or ops)." },
        { name = "password", type = "string",
          description = "That user's password; without it or password_file, no credentials." },
        { name = "password_file", type = "string",
          description = "A file holding that user's password (a trailing newline is ignored)." },
        { name = "node_ca_file", type = "string",
          description = "A PEM file of the CA that signed a secure node's certificate, when the "
              .. "system's CAs do not include it." },
        { name = "config", type = "string",
          description = "The node's config file: by default the one its process was started "
              .. "with (--config, EVENTSTORE_CONFIG), else /etc/eventstore/eventstore.conf." },
        { name = "db", type = "string",
          description = "The database directory: by default the node's Db option (from "
              .. "/info/options, else its command line, environment or config file), else "
              .. "/var/lib/eventstore." },
        node_option_setting("clusterSize", "int", "ClusterSize"),
        node_option_setting("enableAtomPubOverHttp", "bool", "EnableAtomPubOverHttp"),
        node_option_setting("enableExternalTcp", "bool", "EnableExternalTcp"),
        node_option_setting("insecure", "bool", "Insecure"),
        node_option_setting("runProjections", "string", "RunProjections"),
    },
    fields = {
        from_node("string", "version", "The node's version: esVersion of /info, else of its "
            .. "own /gossip entry.", function(ctx)
                local info = read(ctx, "info")
                if info and info.esVersion then return info.esVersion end
                return this_node(ctx.sources.gossip).esVersion
            end, { "gossip" }),
        F.setting("tag", "string", "The git tag the node was built from (oss-v23.10.0). The node "
            .. "shows it only in its start-up log and --version, not over HTTP: null unless "
            .. "given with --set eventstoredb.tag=..."),
        from_node("string", "uptime", "How long the node's process has been running, as "
            .. "[d.]hh:mm:ss.fffffff: from the process, else from the start time in /stats.",
            function(ctx)
                if has_process(ctx) then return timespan(ctx.process.uptime) end
                local started = utc_seconds(ctx.sources.stats.proc.startTime)
                return timespan(math.max(0, ctx.now - started))
            end, { "stats" }, { unit = ".NET TimeSpan" }),
        F.object("cluster", "The node's place in its cluster, from /gossip.", {
            from_node("string", "leaderId", "Instance id of the live member in state Leader; "
                .. "null when /gossip shows none.", function(ctx)
                    for _, m in ipairs(members(ctx.sources.gossip)) do
                        if m.state == "Leader" and m.isAlive ~= false then
                            return tostring(m.instanceId):lower()
                        end
                    end
                    error("/gossip shows no leader", 0)
                end, { "gossip" }),
            from_node("string", "nodeId", "Instance id of this node (new at each start): the "
                .. "/gossip member at the address the answer gives as the server's.",
                function(ctx)
                    return tostring(this_node(ctx.sources.gossip).instanceId):lower()
                end, { "gossip" }),
            from_node("string", "nodeState", "This node's state (Leader, Follower, "
                .. "ReadOnlyReplica, ...): its /gossip entry, else the state /info gives.",
                function(ctx)
                    local gossip = read(ctx, "gossip")
                    if gossip then return this_node(gossip).state end
                    local state = tostring(ctx.sources.info.state)
                    return STATES[state:lower()] or error("unknown state " .. state, 0)
                end, { "gossip" }),
        }),
        F.object("configuration", "Options the node runs with: their values in /info/options; "
            .. "without credentials for it, as the node resolves them (its command line, "
            .. "environment, config file, defaults).", {
            configuration("int", "clusterSize", "ClusterSize",
                          "Number of nodes the cluster is configured for", int_option),
            configuration("bool", "enableAtomPubOverHttp", "EnableAtomPubOverHttp",
                          "Whether the legacy AtomPub protocol is served over HTTP", bool_option),
            configuration("bool", "enableExternalTcp", "EnableExternalTcp",
                          "Whether the legacy TCP client protocol is enabled", bool_option),
            configuration("bool", "insecure", "Insecure",
                          "Whether the node runs without TLS and authentication", bool_option),
            configuration("string", "runProjections", "RunProjections",
                          "Which projections run: None, System or All", projection_type),
        }),
        F.object("database", "The node's transaction log.", {
            from_node("int", "epochNumber", "Number of the node's current epoch, from its "
                .. "/gossip entry.", function(ctx)
                    return this_node(ctx.sources.gossip).epochNumber
                end, { "gossip" }),
            F.instance_id("firstEpochId", "Id of the database's first epoch, the record that "
                .. "opens <db>/chunk-000000.000000: its lasting identity. When that file cannot "
                .. "be read, phonehome's own id for this installation stands in."),
            from_node("int", "activeChunkNumber", "Number of the chunk being written: the "
                .. "writer checkpoint (<db>/writer.chk, else this node's /gossip entry) divided "
                .. "by ChunkSize.", function(ctx)
                    local checkpoint = read(ctx, "writer")
                    if checkpoint == nil then
                        checkpoint = this_node(ctx.sources.gossip).writerCheckpoint
                    end
                    return checkpoint // int_option(ctx, "ChunkSize")
                end, { "writer", "gossip", "options", "config" }),
        }),
        F.object("environment", "The machine and process the node runs in.", {
            F.value("coreCount", "int", "Logical processor cores.",
                    function(ctx) return ctx.system.cores() end),
            from_node("bool", "isContainer", "Whether the node's process has "
                .. "DOTNET_RUNNING_IN_CONTAINER in its environment, as .NET container images "
                .. "set it (when that environment is unreadable: whether its cgroup is a "
                .. "container's).", function(ctx)
                    local ok, v = pcall(ctx.process.env, "DOTNET_RUNNING_IN_CONTAINER")
                    if ok then return v ~= nil end
                    return ctx.process.cgroup.container
                end, {}),
            from_node("bool", "isKubernetes", "Whether the node's process is in a Kubernetes "
                .. "pod (kubepods in its cgroup).",
                function(ctx)
                    for _, line in ipairs(ctx.process.cgroup.paths) do
                        if line:find("kubepods", 1, true) then return true end
                    end
                    return false
                end, {}),
            F.value("processorArchitecture", "string",
                    "Processor architecture, in .NET's names: X64, Arm64, ...",
                    function(ctx)
                        local arch = ctx.system.arch()
                        return dotnet_arch[arch] or arch
                    end),
            F.value("totalDiskSpace", "int",
                    "Size of the file system holding the database directory.",
                    function(ctx) return (ctx.system.disk(db(ctx))) end,
                    { unit = "bytes", sources = { "options", "config" } }),
            F.value("totalMemory", "int", "Physical memory of the machine.",
                    function(ctx) return ctx.system.memory_total() end, { unit = "bytes" }),
        }),
        -- never null, as its declaration has always said: empty when unknown, the fields
        -- beside it saying why
        F.value("gossip", "map", "Every member of the cluster in /gossip, by instance id, "
            .. "with its state; empty when the node is not running or /gossip cannot be read.",
            function(ctx)
                local ok, list = pcall(function() return members(ctx.sources.gossip) end)
                local out = {}
                for _, m in ipairs(ok and list or {}) do
                    out[tostring(m.instanceId):lower()] = m.state
                end
                return out
            end, { values = "string", source = "gossip" }),
        F.object("persistentSubscriptions", "Persistent subscriptions.", {
            from_node("int", "count", "Number of persistent subscriptions in /subscriptions "
                .. "(it needs credentials).", function(ctx)
                    local list = ctx.sources.subscriptions
                    if type(list) ~= "table" then error("/subscriptions is not a list", 0) end
                    return #list
                end, { "subscriptions" }),
        }),
        F.object("projections", "Continuous projections, by kind, from /projections/any (it "
            .. "needs credentials; a node with RunProjections None has none): standard ones are "
            .. "the node's own ($ names).", {
            count("customProjectionCount", "User-defined projections.", "custom"),
            count("standardProjectionCount", "Standard projections.", "standard"),
            count("customProjectionRunningCount", "User-defined projections running.",
                  "customRunning"),
            count("standardProjectionRunningCount", "Standard projections running.",
                  "standardRunning"),
            total("totalCount", "All projections.", "custom", "standard"),
            total("totalRunningCount", "All projections running.", "customRunning",
                  "standardRunning"),
        }),
    },
}
