-- EventStoreDB (23.10 – 24.10) usage telemetry: one JSON document a day, the first an
-- hour after start; opting out still builds and logs it, but sends nothing.
local F = require("phonehome.fields")

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

local function node_id(ctx)
    return ctx.settings["cluster.nodeId"] or ctx.session_id
end

return {
    name = "eventstoredb",
    version = "1.0.0",
    description = "Anonymous usage telemetry of an EventStoreDB node: version, cluster and "
        .. "machine size, enabled protocols, projections and persistent subscriptions.",
    endpoint = "https://eventstore.com/telemetry",
    method = "POST",
    delivery = { retries = 0 },
    schedule = { first = "1h", send_delay = "10s", interval = "24h", anchor = "previous" },
    identity = { field = "database.firstEpochId" },
    -- read by the fields below, as .NET's container images set it
    environment = { "DOTNET_RUNNING_IN_CONTAINER" },
    optout = {
        default = "on",
        env = { { name = "EVENTSTORE_TELEMETRY_OPTOUT", off = { "true" } } },
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
        { name = "db", type = "string", default = "/var/lib/eventstore",
          description = "The database directory; its file system gives totalDiskSpace." },
        { name = "cluster.nodeId", type = "string",
          description = "This node's id; by default a random id chosen at each start, as the "
              .. "node does." },
        { name = "cluster.leaderId", type = "string",
          description = "The leader's id; by default this node's, as in a single-node cluster." },
    },
    fields = {
        F.setting("version", "string", "The EventStoreDB version number.", "23.10.0.0"),
        F.setting("tag", "string", "The build tag of that version.", "oss-v23.10.0"),
        F.value("uptime", "string",
                "How long the node has been running, as [d.]hh:mm:ss.fffffff.",
                function(ctx) return timespan(ctx.process.uptime) end, { unit = ".NET TimeSpan" }),
        F.object("cluster", "The node's place in its cluster.", {
            F.value("leaderId", "string", "Id of the cluster's leader node.",
                    function(ctx) return ctx.settings["cluster.leaderId"] or node_id(ctx) end),
            F.value("nodeId", "string", "Id of this node, new at each start.", node_id),
            F.setting("nodeState", "string",
                      "This node's role: Leader, Follower, ReadOnlyReplica, ...", "Leader"),
        }),
        F.object("configuration", "Options the node runs with.", {
            F.setting("clusterSize", "int", "Number of nodes the cluster is configured for.", 1),
            F.setting("enableAtomPubOverHttp", "bool",
                      "Whether the legacy AtomPub protocol is served over HTTP.", true),
            F.setting("enableExternalTcp", "bool",
                      "Whether the legacy TCP client protocol is enabled.", false),
            F.setting("insecure", "bool", "Whether the node runs without TLS and authentication.",
                      false),
            F.setting("runProjections", "string", "Which projections run: None, System or All.",
                      "None"),
        }),
        F.object("database", "The state of the database.", {
            F.setting("epochNumber", "int", "Number of the current epoch.", 0),
            F.instance_id("firstEpochId", "Id of the first epoch: the database's lasting identity "
                .. "(the instance id kept in the data directory)."),
            F.setting("activeChunkNumber", "int", "Number of the chunk file being written.", 0),
        }),
        F.object("environment", "The machine the node runs on.", {
            F.value("coreCount", "int", "Logical processor cores.",
                    function(ctx) return ctx.system.cores() end),
            F.value("isContainer", "bool",
                    "Whether DOTNET_RUNNING_IN_CONTAINER is set, as in .NET container images.",
                    function(ctx) return ctx.getenv("DOTNET_RUNNING_IN_CONTAINER") ~= nil end),
            F.value("isKubernetes", "bool",
                    "Whether the process runs in a Kubernetes pod (kubepods cgroup).",
                    function(ctx) return ctx.system.kubernetes() end),
            F.value("processorArchitecture", "string",
                    "Processor architecture, in .NET's names: X64, Arm64, ...",
                    function(ctx)
                        local arch = ctx.system.arch()
                        return dotnet_arch[arch] or arch
                    end),
            F.value("totalDiskSpace", "int",
                    "Size of the file system holding the database directory.",
                    function(ctx) return (ctx.system.disk(ctx.settings.db)) end,
                    { unit = "bytes" }),
            F.value("totalMemory", "int", "Physical memory of the machine.",
                    function(ctx) return ctx.system.memory_total() end, { unit = "bytes" }),
        }),
        F.value("gossip", "map", "Every node the cluster knows, by id, with its state.",
                function(ctx) return { [node_id(ctx)] = ctx.settings["cluster.nodeState"] } end,
                { values = "string" }),
        F.object("persistentSubscriptions", "Persistent subscriptions.", {
            F.count("count", "Number of persistent subscriptions."),
        }),
        F.object("projections", "Projections, by kind.", {
            F.count("customProjectionCount", "User-defined projections."),
            F.count("standardProjectionCount", "System projections."),
            F.count("customProjectionRunningCount", "User-defined projections running."),
            F.count("standardProjectionRunningCount", "System projections running."),
            F.count("totalCount", "All projections.", { value = function(ctx)
                return ctx.settings["projections.customProjectionCount"]
                    + ctx.settings["projections.standardProjectionCount"]
            end }),
            F.count("totalRunningCount", "All projections running.", { value = function(ctx)
                return ctx.settings["projections.customProjectionRunningCount"]
                    + ctx.settings["projections.standardProjectionRunningCount"]
            end }),
        }),
    },
}
