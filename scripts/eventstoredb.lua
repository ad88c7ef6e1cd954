-- EventStoreDB (23.10 – 24.10) usage telemetry: one JSON document a day, the first an
-- hour after start; opting out still builds and logs it, but sends nothing.

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
        { name = "version", type = "string", setting = { default = "23.10.0.0" },
          description = "The EventStoreDB version number." },
        { name = "tag", type = "string", setting = { default = "oss-v23.10.0" },
          description = "The build tag of that version." },
        { name = "uptime", type = "string", unit = ".NET TimeSpan",
          description = "How long the node has been running, as [d.]hh:mm:ss.fffffff.",
          value = function(ctx) return timespan(ctx.process.uptime) end },
        { name = "cluster", type = "object", description = "The node's place in its cluster.",
          fields = {
              { name = "leaderId", type = "string", description = "Id of the cluster's leader node.",
                value = function(ctx) return ctx.settings["cluster.leaderId"] or node_id(ctx) end },
              { name = "nodeId", type = "string", description = "Id of this node, new at each "
                  .. "start.",
                value = node_id },
              { name = "nodeState", type = "string", setting = { default = "Leader" },
                description = "This node's role: Leader, Follower, ReadOnlyReplica, ..." },
          } },
        { name = "configuration", type = "object", description = "Options the node runs with.",
          fields = {
              { name = "clusterSize", type = "int", setting = { default = 1 },
                description = "Number of nodes the cluster is configured for." },
              { name = "enableAtomPubOverHttp", type = "bool", setting = { default = true },
                description = "Whether the legacy AtomPub protocol is served over HTTP." },
              { name = "enableExternalTcp", type = "bool", setting = { default = false },
                description = "Whether the legacy TCP client protocol is enabled." },
              { name = "insecure", type = "bool", setting = { default = false },
                description = "Whether the node runs without TLS and authentication." },
              { name = "runProjections", type = "string", setting = { default = "None" },
                description = "Which projections run: None, System or All." },
          } },
        { name = "database", type = "object", description = "The state of the database.",
          fields = {
              { name = "epochNumber", type = "int", setting = { default = 0 },
                description = "Number of the current epoch." },
              { name = "firstEpochId", type = "string",
                description = "Id of the first epoch: the database's lasting identity "
                    .. "(the instance id kept in the data directory).",
                value = function(ctx) return ctx.instance_id end },
              { name = "activeChunkNumber", type = "int", setting = { default = 0 },
                description = "Number of the chunk file being written." },
          } },
        { name = "environment", type = "object", description = "The machine the node runs on.",
          fields = {
              { name = "coreCount", type = "int", description = "Logical processor cores.",
                value = function(ctx) return ctx.system.cores() end },
              { name = "isContainer", type = "bool",
                description = "Whether DOTNET_RUNNING_IN_CONTAINER is set, as in .NET container "
                    .. "images.",
                value = function(ctx) return ctx.getenv("DOTNET_RUNNING_IN_CONTAINER") ~= nil end },
              { name = "isKubernetes", type = "bool",
                description = "Whether the process runs in a Kubernetes pod (kubepods cgroup).",
                value = function(ctx) return ctx.system.kubernetes() end },
              { name = "processorArchitecture", type = "string",
                description = "Processor architecture, in .NET's names: X64, Arm64, ...",
                value = function(ctx)
                    local arch = ctx.system.arch()
                    return dotnet_arch[arch] or arch
                end },
              { name = "totalDiskSpace", type = "int", unit = "bytes",
                description = "Size of the file system holding the database directory.",
                value = function(ctx) return (ctx.system.disk(ctx.settings.db)) end },
              { name = "totalMemory", type = "int", unit = "bytes",
                description = "Physical memory of the machine.",
                value = function(ctx) return ctx.system.memory_total() end },
          } },
        { name = "gossip", type = "map", values = "string",
          description = "Every node the cluster knows, by id, with its state.",
          value = function(ctx)
              return { [node_id(ctx)] = ctx.settings["cluster.nodeState"] }
          end },
        { name = "persistentSubscriptions", type = "object",
          description = "Persistent subscriptions.",
          fields = {
              { name = "count", type = "int", setting = { default = 0 },
                description = "Number of persistent subscriptions." },
          } },
        { name = "projections", type = "object", description = "Projections, by kind.",
          fields = {
              { name = "customProjectionCount", type = "int", setting = { default = 0 },
                description = "User-defined projections." },
              { name = "standardProjectionCount", type = "int", setting = { default = 0 },
                description = "System projections." },
              { name = "customProjectionRunningCount", type = "int", setting = { default = 0 },
                description = "User-defined projections running." },
              { name = "standardProjectionRunningCount", type = "int", setting = { default = 0 },
                description = "System projections running." },
              { name = "totalCount", type = "int", description = "All projections.",
                value = function(ctx)
                    return ctx.settings["projections.customProjectionCount"]
                        + ctx.settings["projections.standardProjectionCount"]
                end },
              { name = "totalRunningCount", type = "int", description = "All projections running.",
                value = function(ctx)
                    return ctx.settings["projections.customProjectionRunningCount"]
                        + ctx.settings["projections.standardProjectionRunningCount"]
                end },
          } },
    },
}
